"""The split images as three containers on one network, wired exactly as configs/deploy/gke.yaml wires them (the
API reaches http://realtime-avatar-tts:3000 and http://realtime-avatar-render:3000); then the avatar container
is stopped in the middle of a stream and started again."""

from __future__ import annotations

import functools
import time

import httpx
import pytest

from models.media import probe
from tests.container.conftest import free_port, gke_manifest
from tests.helpers import stream_cut_by

pytestmark = [pytest.mark.container, pytest.mark.slow]

LONG = " ".join(f"This is sentence number {i} of a long answer, spoken while it is made." for i in range(10))


def manifest_env(deployment: str) -> dict[str, str]:
    """The plain `env` values of a Deployment's container in the GKE manifest."""
    docs = gke_manifest()
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.fixture(scope="module")
def split(images, names):
    from containers import Container, podman

    net = names("net", "network")
    podman("network", "create", net)
    tts = Container(images["tts"], names("tts"), network=net, aliases=["realtime-avatar-tts"]).start()
    avatar = Container(images["avatar"], names("avatar"), network=net, aliases=["realtime-avatar-render"]).start()
    env = manifest_env("realtime-avatar-api")
    assert env["AVATAR_TTS_URL"] == "http://realtime-avatar-tts:3000"  # the Services' names, resolved by the network
    api = Container(images["api"], names("api"), port=free_port(), network=net, env=env).start()
    api.wait("/readyz", timeout=300)  # the API's readiness probes both dependencies
    return tts, avatar, api


def test_the_api_reaches_tts_and_avatar_by_their_service_names(split):
    _, _, api = split
    health = httpx.get(api.url + "/health", timeout=10).json()
    assert health["status"] == "healthy" and set(health["dependencies"].values()) == {"ready"}, health
    ok = httpx.post(api.url + "/api/v1/stream", json={"text": "Split containers stream too.", "size": 256}, timeout=120)
    assert ok.status_code == 200 and probe(ok.content)["n_frames"] > 10
    gen = httpx.post(api.url + "/api/v1/generate", json={"text": "And make whole videos.", "size": 256}, timeout=120)
    assert gen.status_code == 200 and httpx.get(api.url + gen.json()["video_url"], timeout=30).status_code == 200


def test_stopping_the_avatar_container_cuts_the_stream_then_503_then_service_returns(split):
    from containers import podman

    _, avatar, api = split
    stop = functools.partial(podman, "stop", "-t", "2", avatar.name)  # the renderer goes away after the first fragment
    received = stream_cut_by(api.url, {"text": LONG, "size": 256}, stop, timeout=120)
    assert received[4:8] == b"ftyp"

    start = time.monotonic()
    down = httpx.post(api.url + "/api/v1/stream", json={"text": "Anyone there?"}, timeout=60)
    waited = time.monotonic() - start
    assert down.status_code == 503 and down.json()["error"] == "dependency_unavailable", down.text
    assert int(down.headers["retry-after"]) > 0 and waited < 15  # answered, not hung until a timeout
    assert httpx.get(api.url + "/readyz", timeout=10).status_code == 503
    assert httpx.get(api.url + "/livez", timeout=10).status_code == 200  # the API itself is alive

    avatar.restart()  # same name and network alias, a new address
    api.wait("/readyz", timeout=300)
    back = httpx.post(api.url + "/api/v1/stream", json={"text": "Back again.", "size": 256}, timeout=120)
    assert back.status_code == 200 and probe(back.content)["n_frames"] > 10
