"""`canary-analyzer calibrate`: the analysis replayed on a service's own history, half its stable's pods judged
as the canary against the other half (A/A on real traffic). Its layers, each of its own:

- argo.py: Argo's run semantics (the benchmarks' synthetic rollouts replay with them too);
- replay.py: what the server hands the judge at a moment, from counts known already, and a run of answers;
- split.py: the pods in two halves, the same every time;
- history.py: what is read from Prometheus, and within what budget;
- aa.py: the runs replayed on the halves, and where the halves differ;
- power.py: known regressions injected into the canary half and replayed: how often and how soon each is caught;
- figures.py: every figure, as `--json` prints it, and whether they keep the analyzer's promise;
- terminal.py: the tables and the progress bar;
- page.py: the figures as one page that works offline (`--html`).
"""
