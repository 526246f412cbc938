"""Split deployment on loopback: TTS, avatar and API as three served processes joined by URL settings."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _generate(url: str) -> httpx.Response:
    return httpx.post(url + "/api/v1/generate", json={"text": "Split mode works."}, timeout=120)


def test_split_mode_survives_a_dependency_outage(serve):
    tts = serve("services.tts:TTSService")
    avatar = serve("services.avatar:AvatarService")
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
