"""Replaying the analyzer's runs: Argo's run semantics (argo.py), for the benchmarks' synthetic rollouts and
for `canary-analyzer calibrate`, which replays them on a service's own history."""
