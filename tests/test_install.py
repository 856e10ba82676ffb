"""The install paths, built by kubectl's own kustomize and validated as a cluster would see them.

`kubectl apply -k k8s/` needs no CRD; `k8s/prometheus-operator/` adds the ServiceMonitor and the alerts;
`analysis_templates/` installs the ClusterAnalysisTemplates, which reach the analyzer where it runs; the
example install (k8s/examples/install/) moves all of it to another namespace and keeps it wired.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from app.presets import PRESETS
from tests.support import kustomize
from tests.support.servers import ROOT

K8S = ROOT / "k8s"
TEMPLATES = ROOT / "analysis_templates"
EXAMPLE = K8S / "examples/install"
INSTALLS = kustomize.INSTALLS
NAMESPACE = "canary-analyzer"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def group(doc: dict) -> str:
    return doc["apiVersion"].rpartition("/")[0]


def namespaced(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] not in {"Namespace", "ClusterRoleBinding", "ClusterAnalysisTemplate"}]


def analyzer_url(docs: list[dict]) -> str:
    service = kustomize.named(docs, "Service", "canary-analyzer")
    metadata, [port] = service["metadata"], service["spec"]["ports"]
    return f"http://{metadata['name']}.{metadata['namespace']}.svc.cluster.local:{port['port']}"


def template_urls(docs: list[dict]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: next(a["value"] for a in d["spec"]["args"] if a["name"] == "analyzer-url")
        for d in docs
        if d["kind"] in {"AnalysisTemplate", "ClusterAnalysisTemplate"}
    }


@pytest.mark.parametrize("kubernetes", kustomize.KUBERNETES_VERSIONS)
@pytest.mark.parametrize("install", list(INSTALLS))
def test_every_install_validates(install: str, kubernetes: str, tmp_path: Path) -> None:
    kustomize.validate(kustomize.build_text(INSTALLS[install]), tmp_path, kubernetes)


def test_the_base_needs_no_crd() -> None:
    docs = kustomize.build(K8S)
    assert all("." not in group(d) or group(d).endswith(".k8s.io") for d in docs), [d["kind"] for d in docs]
    assert kustomize.named(docs, "Namespace")["metadata"]["name"] == NAMESPACE
    assert {d["metadata"]["namespace"] for d in namespaced(docs)} == {NAMESPACE}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "canary-analyzer" for d in docs)
    kustomize.named(docs, "ConfigMap", "canary-analyzer-dashboards")  # the dashboards come with any install
    [container] = kustomize.named(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/canary-analyzer/canary-analyzer:{VERSION}"


def test_the_prometheus_operator_install_adds_the_servicemonitor_and_the_alerts() -> None:
    base, full = kustomize.build(K8S), kustomize.build(K8S / "prometheus-operator")
    added = [d for d in full if d not in base]
    assert sorted(d["kind"] for d in added) == ["PrometheusRule", "ServiceMonitor"]
    assert all(group(d) == "monitoring.coreos.com" for d in added)
    assert {d["metadata"]["namespace"] for d in added} == {NAMESPACE}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "canary-analyzer" for d in added)
    assert [d for d in full if d in base] == base


def test_the_templates_install_every_cluster_template_and_reach_the_default_analyzer() -> None:
    docs = kustomize.build(TEMPLATES)
    files = sorted(TEMPLATES.glob("cluster-*.yaml"))
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(
        yaml.safe_load(f.read_text())["metadata"]["name"] for f in files
    )
    assert all(d["kind"] == "ClusterAnalysisTemplate" and "namespace" not in d["metadata"] for d in docs)
    assert set(template_urls(docs).values()) == {analyzer_url(kustomize.build(K8S))}


@pytest.mark.parametrize("name", ["analysis-template.yaml", "background-analysis-template.yaml"])
def test_the_namespaced_templates_land_where_kubectl_puts_them(name: str) -> None:
    """`kubectl apply -n NAMESPACE -f` places them: they name no namespace of their own."""
    template = yaml.safe_load((TEMPLATES / name).read_text())
    assert template["kind"] == "AnalysisTemplate" and "namespace" not in template["metadata"]
    assert set(template_urls([template]).values()) == {analyzer_url(kustomize.build(K8S))}


def test_the_example_install_moves_everything_and_keeps_it_wired() -> None:
    docs = kustomize.build(EXAMPLE)
    analyzer = yaml.safe_load((EXAMPLE / "analyzer/kustomization.yaml").read_text())
    namespace = analyzer["namespace"]
    assert namespace != NAMESPACE
    assert kustomize.named(docs, "Namespace")["metadata"]["name"] == namespace
    assert {d["metadata"]["namespace"] for d in namespaced(docs)} == {namespace}
    # The templates stay cluster-scoped and ask the analyzer where it now runs.
    templates = [d for d in docs if d["kind"] == "ClusterAnalysisTemplate"]
    assert len(templates) == len(kustomize.build(TEMPLATES))
    assert all("namespace" not in d["metadata"] for d in templates)
    assert set(template_urls(docs).values()) == {analyzer_url(docs)}
    assert f".{namespace}.svc" in analyzer_url(docs)
    # The image built and pushed, the Prometheus asked, the peers admitted, the label Prometheus selects by.
    [image] = analyzer["images"]
    [container] = kustomize.named(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}" and image["newTag"] == VERSION
    assert kustomize.named(docs, "ConfigMap", "canary-analyzer")["data"]["PROMETHEUS_URL"].startswith(
        "http://prometheus-operated.observability.svc"
    )
    [rule] = kustomize.named(docs, "NetworkPolicy")["spec"]["ingress"]
    peers = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: peer["namespaceSelector"]["matchLabels"][
            "kubernetes.io/metadata.name"
        ]
        for peer in rule["from"]
    }
    assert peers == {"argo-rollouts": "argo-rollouts", "prometheus": "observability"}
    monitoring = [d for d in docs if group(d) == "monitoring.coreos.com"]
    assert sorted(d["kind"] for d in monitoring) == ["PrometheusRule", "ServiceMonitor"]
    assert all(d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in monitoring)


def test_the_example_install_without_the_prometheus_operator_needs_no_crd(tmp_path: Path) -> None:
    """Leaving the component out, as its comment says, leaves nothing that needs the operator's CRDs."""
    copy = kustomize.copy_tree(tmp_path)
    path = copy / "k8s/examples/install/analyzer/kustomization.yaml"
    analyzer = yaml.safe_load(path.read_text())
    assert analyzer.pop("components") == ["../../../components/prometheus-operator"]
    path.write_text(yaml.safe_dump(analyzer, sort_keys=False))
    docs = kustomize.build(copy / "k8s/examples/install")
    assert not [d for d in docs if group(d) == "monitoring.coreos.com"]
    kustomize.validate(yaml.safe_dump_all(docs), tmp_path)


def test_the_example_install_keeps_the_tenancy_binding_on_the_moved_serviceaccount(tmp_path: Path) -> None:
    """docs/many-teams.md: the tenancy component added to the example's analyzer."""
    copy = kustomize.copy_tree(tmp_path)
    path = copy / "k8s/examples/install/analyzer/kustomization.yaml"
    analyzer = yaml.safe_load(path.read_text())
    analyzer["components"].append("../../../components/tenancy")
    path.write_text(yaml.safe_dump(analyzer, sort_keys=False))
    docs = kustomize.build(copy / "k8s/examples/install")
    [subject] = kustomize.named(docs, "ClusterRoleBinding")["subjects"]
    account = kustomize.named(docs, "ServiceAccount")["metadata"]
    assert (subject["name"], subject["namespace"]) == (account["name"], account["namespace"])
    assert account["namespace"] != NAMESPACE


def test_the_network_policy_admits_argo_and_prometheus_from_their_usual_namespaces() -> None:
    [rule] = kustomize.named(kustomize.build(K8S), "NetworkPolicy")["spec"]["ingress"]
    peers = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: peer["namespaceSelector"]["matchLabels"][
            "kubernetes.io/metadata.name"
        ]
        for peer in rule["from"]
    }
    # The controller's label in Argo Rollouts' install.yaml; the operator's label on its Prometheus pods.
    assert peers == {"argo-rollouts": "argo-rollouts", "prometheus": "monitoring"}


def test_the_podmonitor_gives_the_rollout_pods_series_the_default_presets_labels() -> None:
    monitor = yaml.safe_load((K8S / "examples/podmonitor.yaml").read_text())
    rollout = yaml.safe_load((K8S / "examples/rollout.yaml").read_text())
    pods = rollout["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pods["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for c in pods["spec"]["containers"] for p in c["ports"]}
    copies = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    preset = PRESETS["default"]
    # The label Argo Rollouts sets on every pod of a Rollout, which podTemplateHashValue names.
    assert copies[preset.version_label] == ["__meta_kubernetes_pod_label_rollouts_pod_template_hash"]
    assert copies[preset.service_label] == ["__meta_kubernetes_pod_label_app"]
    analyses = [step["analysis"] for step in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in step]
    service = {arg["value"] for analysis in analyses for arg in analysis["args"] if arg["name"] == "service"}
    assert service == {pods["metadata"]["labels"]["app"]}
