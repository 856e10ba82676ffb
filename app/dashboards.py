"""The Grafana canary-vs-stable dashboard, one per preset, generated from the preset's data so
that they cannot drift from what the analyzer reads.

`python -m app.dashboards` writes them into k8s/base/dashboards/; a test fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.presets import PRESETS, Preset, matcher

DASHBOARDS = Path(__file__).resolve().parents[1] / "k8s" / "base" / "dashboards"
UID = "canary-vs-stable"
ANALYZER_URL = "http://canary-analyzer.canary-analyzer.svc.cluster.local:8080"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"


def uid(preset_name: str, base: str = UID) -> str:
    """The default preset's dashboard keeps the first version's uid; the others add their name."""
    return base if preset_name == "default" else f"{base}-{preset_name}"


def file_name(preset_name: str) -> str:
    return f"{uid(preset_name)}.json"


def canary_dashboard(preset: Preset) -> dict[str, Any]:
    latency = f"{preset.duration_metric} ({preset.latency_unit}, {preset.latency_histogram} histogram)"
    panels = [
        _panel(
            i + 1,
            f"P{q * 100:g} latency: canary vs stable",
            f"P{q * 100:g} of {latency}, in seconds. The analyzer compares the canary's latency with its "
            "SLO and with the stable's.",
            "s",
            {"x": 8 * i, "y": 0, "w": 8, "h": 8},
            [_quantile(preset, q, role) for role in ("canary", "stable")],
        )
        for i, q in enumerate((0.5, 0.95, 0.99))
    ]
    panels.append(
        _panel(
            4,
            "Error rate: canary vs stable",
            f"Requests whose {preset.error_label} matches {preset.error_regex!r}, over all requests.",
            "percentunit",
            {"x": 0, "y": 8, "w": 12, "h": 8},
            [_error_rate(preset, role) for role in ("canary", "stable")],
        )
    )
    panels.append(
        _panel(
            5,
            "Request rate: canary vs stable",
            "Below min_requests per analysis window the analyzer answers inconclusive.",
            "reqps",
            {"x": 12, "y": 8, "w": 12, "h": 8},
            [f"sum(rate({preset.requests_metric}{_selector(preset, role)}{RATE}))" for role in ("canary", "stable")],
        )
    )
    return {
        "uid": uid(preset.name),
        "title": "Canary vs stable" + ("" if preset.name == "default" else f" ({preset.name})"),
        "description": f"The canary beside its stable, on the metrics canary-analyzer judges with the {preset.name} "
        f"preset: {preset.requests_metric} and {preset.duration_metric}.",
        "tags": ["canary-analyzer"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": _variables(preset)},
        "links": [
            {
                "title": "Analyze in canary-analyzer",
                "type": "link",
                "targetBlank": True,
                "icon": "external link",
                "url": "${analyzer_url}/analyze?service=${service}&canary=${canary}&stable=${stable}"
                + ("" if preset.name == "default" else f"&preset={preset.name}"),
                "tooltip": "The analyzer's verdict and report for these versions",
            }
        ],
        "annotations": {"list": []},
        "panels": panels,
    }


def _selector(preset: Preset, role: str) -> str:
    matchers = [
        f'{preset.service_label}="$service"',
        *_filters(preset),
        f'{preset.version_label}="${role}"',
    ]
    return "{" + ",".join(matchers) + "}"


def _filters(preset: Preset) -> list[str]:
    return [f'{label}{op}"{operand}"' for label, (op, operand) in ((k, matcher(v)) for k, v in preset.filters.items())]


def _in_seconds(preset: Preset) -> str:
    return "" if preset.seconds_per_unit == 1 else f" * {preset.seconds_per_unit:g}"


def _quantile(preset: Preset, q: float, role: str) -> str:
    if preset.latency_histogram == "native":
        inner = f"sum(rate({preset.duration_metric}{_selector(preset, role)}{RATE}))"
    else:
        inner = f"sum by (le) (rate({preset.duration_metric}_bucket{_selector(preset, role)}{RATE}))"
    return f"histogram_quantile({q:g}, {inner}){_in_seconds(preset)}"


def _error_rate(preset: Preset, role: str) -> str:
    selector = _selector(preset, role)
    errors = selector[:-1] + f',{preset.error_label}=~"{preset.error_regex}"' + "}"
    return f"sum(rate({preset.requests_metric}{errors}{RATE})) / sum(rate({preset.requests_metric}{selector}{RATE}))"


def _panel(
    panel_id: int, title: str, description: str, unit: str, grid: dict[str, int], exprs: list[str]
) -> dict[str, Any]:
    stable_dashed = {
        "matcher": {"id": "byName", "options": "stable"},
        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
    }
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 2}}, "overrides": [stable_dashed]},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi"},
        },
        "targets": [
            {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for ref, expr, legend in zip("AB", exprs, ("canary", "stable"), strict=True)
        ],
    }


def _variables(preset: Preset) -> list[dict[str, Any]]:
    service_filter = ",".join(_filters(preset))
    services = f"label_values({preset.requests_metric}{{{service_filter}}}, {preset.service_label})"
    versions = f'label_values({preset.requests_metric}{{{preset.service_label}="$service"}}, {preset.version_label})'

    def query(name: str, label: str, promql: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": promql, "refId": name},
            "definition": promql,
            "refresh": 2,
            "sort": 1,
            "current": {},
            "hide": 0,
            "includeAll": False,
            "multi": False,
            **extra,
        }

    # ingress-nginx: the stable's series carry no version label: offer the empty value too.
    stable_extra = {"allowCustomValue": True} if preset.empty_stable else {}
    return [
        {
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Prometheus",
            "current": {},
            "hide": 0,
        },
        query("service", "Service", services),
        query("canary", "Canary version", versions),
        query("stable", "Stable version", versions, **stable_extra),
        {
            "name": "analyzer_url",
            "label": "Analyzer URL",
            "type": "textbox",
            "hide": 0,
            "query": ANALYZER_URL,
            "current": {"text": ANALYZER_URL, "value": ANALYZER_URL},
        },
    ]


def render(preset: Preset) -> str:
    return json.dumps(canary_dashboard(preset), indent=2) + "\n"


if __name__ == "__main__":
    for name, preset in PRESETS.items():
        (DASHBOARDS / file_name(name)).write_text(render(preset))
