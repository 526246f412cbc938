"""Split deployment on loopback: TTS, avatar and API as three served processes joined by URL settings."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _generate(url: str) -> httpx.Response:
    return httpx.post(url + "/api/v1/generate", json={"text": "Split mode works."}, timeout=120)


def _served_metric(url: str, name: str, service: str) -> bool:
    """Whether `/metrics` serves a sample of `name` for `service` (what Managed Prometheus scrapes)."""
    lines = httpx.get(url + "/metrics", timeout=10).text.splitlines()
    return any(line.startswith(name + "{") and f'service_name="{service}"' in line for line in lines)


def test_split_mode_survives_a_dependency_outage(serve):
    # the GKE autoscalers' metric (configs/deploy/gke.yaml) is one the TTS and avatar units really serve (each
    # read before the next server starts: servers sharing one BentoML home share, and a start clears, the metrics
    # folder; in a cluster each pod has its own)
    import yaml

    from tests.integration.conftest import ROOT

    docs = list(yaml.safe_load_all((ROOT / "configs" / "deploy" / "gke.yaml").read_text()))
    metrics = {d["metadata"]["name"]: d["spec"]["metrics"][0] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    units = {}
    for target, name, service in (("services.tts:TTSService", "realtime-avatar-tts", "tts"),
                                  ("services.avatar:AvatarService", "realtime-avatar-render", "avatar")):  # fmt: skip
        units[service] = serve(target)
        gauge = metrics[name]["pods"]["metric"]["name"].split("|")[1]
        assert _served_metric(units[service].url, gauge, service), (name, gauge)
    tts, avatar = units["tts"], units["avatar"]
    api = serve("services.pipeline:AvatarPipeline", AVATAR_TTS_URL=tts.url, AVATAR_RENDER_URL=avatar.url)
    assert _generate(api.url).status_code == 200

    avatar.stop()
    down = _generate(api.url)
    assert down.status_code == 503 and down.headers["retry-after"]
    assert down.json()["error"] == "dependency_unavailable"
    assert httpx.get(api.url + "/livez", timeout=10).status_code == 200  # the API itself is alive
    assert httpx.get(api.url + "/health", timeout=30).status_code == 503

    serve("services.avatar:AvatarService", port=avatar.port)  # back on the same address
    ok = _generate(api.url)
    assert ok.status_code == 200, ok.text
    assert httpx.get(api.url + "/health", timeout=30).json()["status"] == "healthy"
