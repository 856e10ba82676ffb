"""calibrate's page (app/calibration/page.py): its figures as the report draws them, in one file that works offline,
read in a real headless Chromium from disk."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from app.calibration.aa import calibrated, templates
from app.calibration.figures import CalibrationOut, figures
from app.calibration.page import CELL_OF_OUTCOME, page
from app.calibration.power import power
from app.models import CalibrationRequest
from tests.support.browser import SMALLEST_LABEL_PX, UNREADABLE, chromium, console_errors, requests_made
from tests.support.calibration import minute_history

SLOW = "web-3"
OUT_OF_THE_BROWSER = ("http", "https", "ws", "wss", "file")


@pytest.fixture(scope="module")
def slow() -> CalibrationOut:
    """Six pods for eight hours, one a bucket slower, judged strictly enough that some runs abort."""
    request = CalibrationRequest(service="web", period="8h", p95_ratio_max=1.05, p95_max_seconds=0.3)
    calibration = calibrated(minute_history(slow=SLOW, hours=8), request, "default", templates())
    return figures(calibration, power(calibration))


@pytest.fixture(scope="module")
def written(slow: CalibrationOut, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "calibration.html"
    path.write_text(page(slow))
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def test_the_page_fetches_nothing_and_runs_nothing(written: Path) -> None:
    html = written.read_text()
    assert "<script" not in html.lower() and not re.search(r"(src|href)=", html)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html  # its own policy: a browser refuses whatever else it might ask for


def test_each_run_is_drawn_at_its_start_with_its_outcome(slow: CalibrationOut, written: Path) -> None:
    html = written.read_text()
    for template in slow.templates:
        strip = html.split(f'<div class="strip" data-template="{template.template}">', 1)[1].split("</div>", 1)[0]
        drawn = Counter(re.findall(r'data-verdict="(\w+)"', strip))
        assert drawn == Counter(CELL_OF_OUTCOME[run.outcome] for run in template.over_time)
        assert sum(drawn.values()) == template.runs
    assert slow.templates[0].aborted.count > 0  # the strict limit aborted runs: the strip shows fails, not only passes


def test_the_halves_are_charted_hour_by_hour_and_the_slow_pod_named(slow: CalibrationOut, written: Path) -> None:
    html = written.read_text()
    assert len(slow.hours) == 8
    hours = html.split('id="hours"', 1)[1].split("</section>", 1)[0]
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", hours)
    assert captions == ["requests each hour", *(f"{check} each hour" for check in slow.units)]
    assert hours.count('data-series="A"') == hours.count('data-series="B"') == len(captions)
    pods = html.split('id="pods"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-value="([^"]+)"', pods) == [SLOW]


def test_the_power_curves_draw_each_size_replayed(slow: CalibrationOut, written: Path) -> None:
    assert slow.power is not None
    section = written.read_text().split('id="power"', 1)[1].split("</section>", 1)[0]
    for search in slow.power.smallest:
        figure = section.split(f'<figure class="chart" data-kind="{search.kind}">', 1)[1].split("</figure>", 1)[0]
        step = re.search(r'data-series="step" d="([^"]+)"', figure)
        assert step is not None
        sizes = {row.size for row in [*search.tried, *slow.power.injected] if row.kind == search.kind}
        sizes &= {row.size for row in [*search.tried, *slow.power.injected] if row.template == "step"}
        assert len(re.findall(r"[ML]", step[1])) == len(sizes)  # one point a size replayed on the step template
        assert 'class="quantile"' in figure  # the share that counts as caught
    rows = re.findall(r'<tr data-regression="([^"]+)" data-template="(\w+)">', section)
    assert rows == [(row.regression, row.template) for row in slow.power.injected]


def test_the_slo_is_drawn_against_the_buckets_with_the_lines_to_paste(slow: CalibrationOut, written: Path) -> None:
    section = written.read_text().split('id="buckets"', 1)[1].split("</section>", 1)[0]
    assert 'data-mark="slo"' in section and 'data-series="stable"' in section
    assert [slo.where for slo in slow.buckets.slos] == ["between bounds"]  # 0.3 s in (0.25, 0.5]
    pasted = re.findall(r'<pre class="paste">([^<]+)</pre>', section)
    assert pasted == [escape(line) for line in slow.buckets.lines.values()] and len(pasted) == 3


@pytest.mark.parametrize("width", [1300, 1920])
def test_the_page_reads_whole_offline_in_a_browser(
    browser: webdriver.Chrome, written: Path, artifacts: Path, width: int
) -> None:
    browser.get_log("browser")
    browser.get_log("performance")  # what an earlier page asked for is not this page's
    browser.set_window_size(width, 1600)
    try:
        browser.get(written.as_uri())
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, height + 200)
        browser.save_screenshot(str(artifacts / f"calibration-{width}.png"))
        assert browser.find_element(By.ID, "promise").text.strip().upper().endswith("BEYOND")
        assert len(browser.find_elements(By.CSS_SELECTOR, "main svg text")) > 20
        assert not browser.execute_script(UNREADABLE, SMALLEST_LABEL_PX)
        # The new tab the browser opened with asks for chrome:// and data: URLs of its own: not this page's.
        asked = {url for url in requests_made(browser) if urlsplit(url).scheme in OUT_OF_THE_BROWSER}
        assert asked == {written.as_uri()}
        assert console_errors(browser) == []
    finally:
        browser.set_window_size(1300, 1600)
