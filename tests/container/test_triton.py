"""The Triton image (make image UNIT=triton) run as configs/deploy/gke-triton.yaml runs it, hardened, with the API
image in front of it calling triton://: the same requests as the split BentoML images answer."""

from __future__ import annotations

import httpx
import pytest
import yaml

from models.media import probe
from tests.container.conftest import ROOT, free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]


def triton_container(deployment: str) -> dict:
    docs = yaml.safe_load_all((ROOT / "configs" / "deploy" / "gke-triton.yaml").read_text())
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return container


def test_the_api_image_over_the_triton_image(images, names):
    from containers import Container, podman

    net = names("triton-net", "network")
    podman("network", "create", net)
    spec = triton_container("realtime-avatar-tts")
    command = spec["command"][:-2]  # both units in one container here (the manifest runs one unit per pod)
    assert spec["command"][-2:] == ["--units", "tts"]
    aliases = ["realtime-avatar-tts", "realtime-avatar-render"]  # the Services' names in the manifest
    data = names("triton-data", "volume") + ":/data"  # the manifest's emptyDir: the root is read-only
    triton = Container(images["triton"], names("triton"), network=net, hardened=True, command=command,
                       workdir=spec["workingDir"], aliases=aliases, volumes=[data])  # fmt: skip
    triton.start()
    urls = {
        "AVATAR_TTS_URL": "triton://realtime-avatar-tts:8000",
        "AVATAR_RENDER_URL": "triton://realtime-avatar-render:8000",
    }
    api = Container(images["api"], names("api-over-triton"), port=free_port(), network=net, env=urls).start()
    api.wait("/readyz", timeout=300)  # ready once both Triton models answer
    health = httpx.get(api.url + "/health", timeout=10).json()
    assert health["status"] == "healthy" and health["models"]["tts"]["engine"], health
    ok = httpx.post(
        api.url + "/api/v1/stream", json={"text": "Triton in a container streams.", "size": 256}, timeout=120
    )
    assert ok.status_code == 200 and probe(ok.content)["n_frames"] > 10
    gen = httpx.post(api.url + "/api/v1/generate", json={"text": "And makes whole videos.", "size": 256}, timeout=120)
    assert gen.status_code == 200, gen.text
    assert probe(httpx.get(api.url + gen.json()["video_url"], timeout=30).content)["n_frames"] > 10
    assert podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", triton.name).strip() == "true"
