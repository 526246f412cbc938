"""The deploy manifests against Kubernetes' own schemas (kubernetes-validate ships them), strict: an unknown or
misspelt field fails. Kubernetes 1.35, what GKE's regular channel creates clusters with (its release notes, at the
time of writing). podman kube play reads the Deployments only; this reads every document.

Cloud Run's service YAML is a Knative `serving.knative.dev/v1` Service, for which there is no schema here: its
containers (and node selector) are validated as a Kubernetes PodSpec, which Cloud Run's are a subset of; Knative's
own fields (containerConcurrency, timeoutSeconds, the annotations) are checked against our settings in
tests/unit/test_deploy.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = "1.35.0"
kubernetes_validate = pytest.importorskip("kubernetes_validate")


def _rendered(script: str, name: str, tmp_path: Path, *extra: str) -> list[dict]:
    cmd = ["bash", f"scripts/{script}", "--project", "demo-proj", "--dry-run", "--out", str(tmp_path), *extra]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all((tmp_path / name).read_text()) if d]


def _valid(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_every_gke_document_is_valid_kubernetes(tmp_path):
    """Every built-in kind against Kubernetes' schema; Managed Prometheus's PodMonitoring (a CRD, no schema here)
    by the fields it uses: it selects every Deployment's pods, on a port their containers name."""
    docs = _rendered("deploy_gke.sh", "gke.yaml", tmp_path)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Namespace", "PodDisruptionBudget", "PodMonitoring",
                     "Service"], kinds  # fmt: skip
    for doc in docs:
        if doc["kind"] != "PodMonitoring":
            _valid(doc)
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitoring"]
    assert monitor["apiVersion"] == "monitoring.googleapis.com/v1"
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    for dep in deployments:
        pod = dep["spec"]["template"]
        assert wanted.items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


def test_each_deployment_has_a_disruption_budget_and_scales_on_load(tmp_path):
    docs = _rendered("deploy_gke.sh", "gke.yaml", tmp_path)
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        name, labels = dep["metadata"]["name"], dep["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpas = {d["metadata"]["name"]: d["spec"]["metrics"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert hpas["realtime-avatar-api"][0]["resource"]["name"] == "cpu"  # the API stays on CPU
    for name in ("realtime-avatar-tts", "realtime-avatar-render"):
        (metric,) = hpas[name]
        assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == HPA_METRIC, metric


HPA_METRIC = "prometheus.googleapis.com|bentoml_service_request_in_progress|gauge"  # served: tests/integration
TRITON_METRIC = "prometheus.googleapis.com|nv_inference_queue_duration_us|counter"  # tests/integration/test_triton


def test_the_triton_variant_is_valid_and_scales_on_triton_s_queue(tmp_path):
    docs = _rendered("deploy_gke.sh", "gke.yaml", tmp_path, "--runtime", "triton")
    for doc in docs:
        if doc["kind"] != "PodMonitoring":
            _valid(doc)
    named = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(named) == len(docs), "an object is declared twice"
    api = named[("Deployment", "realtime-avatar-api")]["spec"]["template"]["spec"]["containers"][0]
    urls = {e["name"]: e["value"] for e in api["env"] if e["name"].endswith("_URL")}
    assert urls == {"AVATAR_TTS_URL": "triton://realtime-avatar-tts:8000",
                    "AVATAR_RENDER_URL": "triton://realtime-avatar-render:8000"}  # fmt: skip
    monitors = [d for d in docs if d["kind"] == "PodMonitoring"]
    for unit in ("tts", "render"):
        dep = named[("Deployment", f"realtime-avatar-{unit}")]["spec"]["template"]
        (c,) = dep["spec"]["containers"]
        assert c["command"][:3] == ["python", "-m", "services_triton"] and "triton" in c["image"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"kserve": 8000, "metrics": 8002} and c["readinessProbe"]["httpGet"]["port"] == 8000
        service = named[("Service", f"realtime-avatar-{unit}")]["spec"]["ports"][0]
        assert service["port"] == 8000 and urls[f"AVATAR_{unit.upper()}_URL"].endswith(f"-{unit}:8000")
        (metric,) = named[("HorizontalPodAutoscaler", f"realtime-avatar-{unit}")]["spec"]["metrics"]
        assert metric["pods"]["metric"]["name"] == TRITON_METRIC
        labels = dep["metadata"]["labels"].items()
        scraped = [m for m in monitors if m["spec"]["selector"]["matchLabels"].items() <= labels]
        served = {p["name"] for p in c["ports"]}  # a monitor's port the pod lacks is not scraped there
        assert [e["port"] for m in scraped for e in m["spec"]["endpoints"] if e["port"] in served] == ["metrics"]


def test_cloud_run_containers_are_a_valid_pod_spec(tmp_path):
    (service,) = _rendered("deploy_cloudrun.sh", "cloudrun.yaml", tmp_path)
    assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service"
    spec = service["spec"]["template"]["spec"]
    containers = [{"name": "app", **c} for c in spec["containers"]]  # Knative names an unnamed container itself
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": service["metadata"]["name"]},
           "spec": {"containers": containers, "nodeSelector": spec.get("nodeSelector", {})}}  # fmt: skip
    _valid(pod)


def test_a_misspelt_field_fails():
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPrt": 3000}]}}  # fmt: skip
    with pytest.raises(kubernetes_validate.ValidationError):
        _valid(doc)
