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


def _rendered(script: str, name: str, tmp_path: Path) -> list[dict]:
    cmd = ["bash", f"scripts/{script}", "--project", "demo-proj", "--dry-run", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all((tmp_path / name).read_text()) if d]


def _valid(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_every_gke_document_is_valid_kubernetes(tmp_path):
    docs = _rendered("deploy_gke.sh", "gke.yaml", tmp_path)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Namespace", "Service"], kinds
    for doc in docs:
        _valid(doc)


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
