"""Halves of a version's pods (app/calibration/split.py): the same every time, balanced, moved little by a pod that
comes or goes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.calibration.split import NotSplit, split

PODS = [f"shop-{i:02d}" for i in range(20)]


def test_the_halves_are_those_of_the_values_hashes_order() -> None:
    halves = split("pod", PODS)
    assert (len(halves.a), len(halves.b)) == (10, 10)
    assert set(halves.a) | set(halves.b) == set(PODS) and not set(halves.a) & set(halves.b)
    # SHA-256, not Python's hash(): the same halves on any machine, in any process.
    assert halves.a == (
        "shop-00", "shop-02", "shop-05", "shop-06", "shop-10", "shop-11", "shop-12", "shop-14", "shop-15", "shop-19"
    )  # fmt: skip
    assert split("pod", reversed(PODS)) == halves
    assert [halves.of(pod) for pod in ("shop-00", "shop-01")] == ["A", "B"]


def test_the_halves_do_not_depend_on_the_process() -> None:
    code = "from app.calibration.split import split; print(split('pod', [f'p{i}' for i in range(9)]))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(seen) == 1 and "Halves(" in seen.pop()


def test_a_pod_that_comes_moves_at_most_one_other() -> None:
    before, after = split("pod", PODS), split("pod", [*PODS, "shop-20"])
    moved = [pod for pod in PODS if before.of(pod) != after.of(pod)]
    assert len(moved) <= 1
    assert abs(len(after.a) - len(after.b)) == 1


def test_two_pods_are_two_halves() -> None:
    halves = split("instance", ["10.0.0.1:8080", "10.0.0.2:8080"])
    assert len(halves.a) == len(halves.b) == 1


@pytest.mark.parametrize("values", [[], ["web-0"], ["web-0", "web-0"]])
def test_fewer_than_two_values_do_not_split(values: list[str]) -> None:
    with pytest.raises(NotSplit, match="does not tell its pods apart"):
        split("pod", values)
