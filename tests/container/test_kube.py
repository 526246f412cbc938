"""`podman kube play` of the GKE manifest (configs/deploy/gke.yaml) with the local images and an overlay for this
CPU machine: the three pods become ready and a request through the API pod is answered."""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import pytest
import yaml

from tests.container.conftest import free_port, gke_manifest

pytestmark = [pytest.mark.container, pytest.mark.slow]


def rendered(images: dict[str, str]) -> list[dict]:
    """The manifest as scripts/deploy_gke.sh renders it, with the local images."""
    values = {"NAMESPACE": "realtime-avatar", "IMAGE_TTS": images["tts"], "IMAGE_AVATAR": images["avatar"],
              "IMAGE_API": images["api"]}  # fmt: skip
    return gke_manifest(values)


def cpu_overlay(deployment: dict, host_port: int | None) -> dict:
    """For a CPU machine and podman: no GPU node selector or GPU limit, the cpu profile, one replica; only the API
    publishes its port (podman publishes every containerPort on the host, so the others drop theirs)."""
    dep = copy.deepcopy(deployment)
    spec = dep["spec"]
    spec["replicas"] = 1
    spec["template"]["spec"].pop("nodeSelector", None)
    (c,) = spec["template"]["spec"]["containers"]
    c["resources"].get("limits", {}).pop("nvidia.com/gpu", None)
    c["env"] = [e for e in c.get("env", []) if e["name"] != "AVATAR_PROFILE"]
    c["imagePullPolicy"] = "Never"
    if host_port is None:
        c.pop("ports")
    else:
        c["ports"] = [{**c["ports"][0], "hostPort": host_port, "hostIP": "127.0.0.1"}]
    return dep


@pytest.fixture(scope="module")
def played(images, names, tmp_path_factory):
    from containers import podman

    docs = rendered(images)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Service"} >= set(deployments)
    net, port, folder = names("kube", "network"), free_port(), tmp_path_factory.mktemp("kube")
    podman("network", "create", net)
    files: list[Path] = []
    for name in ("realtime-avatar-tts", "realtime-avatar-render", "realtime-avatar-api"):  # dependencies first
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cpu_overlay(deployments[name], port if name.endswith("-api") else None)))
        # podman has no Services: the Deployment's name becomes its pod's DNS alias on the network instead
        podman("kube", "play", "--network", f"{net}:alias={name}", str(path), timeout=300)
        files.append(path)
    yield f"http://127.0.0.1:{port}"
    for path in reversed(files):
        podman("kube", "down", str(path), check=False, timeout=300)


def test_the_pods_become_ready_and_the_api_pod_answers(played):
    import time

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(played + "/readyz", timeout=5).status_code == 200:  # the API probes both dependencies
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    health = httpx.get(played + "/health", timeout=10).json()
    assert health["status"] == "healthy" and set(health["dependencies"].values()) == {"ready"}, health
    r = httpx.post(played + "/api/v1/generate", json={"text": "Hello from a pod.", "size": 256}, timeout=120)
    assert r.status_code == 200, r.text
    video = httpx.get(played + r.json()["video_url"], timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_the_pods_run_as_the_manifest_hardens_them(played):
    """podman applies the manifest's securityContext as the kubelet would: a read-only root, the image's user, no
    capability and no privilege escalation, in each of the three pods."""
    from containers import podman

    pods = [p for p in podman("pod", "ps", "--format", "{{.Name}}").split() if p.startswith("realtime-avatar-")]
    workers = [n for pod in pods for n in podman("ps", "--filter", f"pod={pod}", "--format", "{{.Names}}").split()
               if "infra" not in n]  # fmt: skip
    assert len(workers) == 3, (pods, workers)
    for name in workers:
        fmt = "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}"
        readonly, user = podman("inspect", "--format", fmt, name).split()[:2]
        status = podman("exec", name, "sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/1/status").split()
        assert readonly == "true" and user.split(":")[0] in ("1034", "bentoml"), (name, readonly, user)
        assert status[0] == "1034" and status[status.index("CapEff:") + 1] == "0000000000000000", (name, status)
        assert status[status.index("NoNewPrivs:") + 1] == "1", (name, status)
