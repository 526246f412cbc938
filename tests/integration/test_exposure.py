"""Safe to expose, against a real keyed `bentoml serve`: the findings of a new user's public deployment, each
reproduced as it was found.
1. A browser's WebSocket cannot set headers: both sockets take the key as a subprotocol (headers still work).
2. A page on another site cannot open the sockets (cross-site WebSocket hijacking): 403 before the upgrade.
3. Decompression bombs (a 2.7 MB PNG once took the avatar worker to 2.9 GB) are refused from their headers, and
   the workers' peak memory does not move."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import pytest

from services.launcher import Server
from tests.integration.conftest import ROOT
from tests.unit.test_audio_bombs import flac_bomb
from tests.unit.test_image_bombs import BOMBS

pytestmark = pytest.mark.integration
websockets = pytest.importorskip("websockets")
KEY = "exposure-test-key"
SOCKETS = ["/api/v1/live", "/api/v1/animate/live"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exposure")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_FPS": "12", "AVATAR_API_KEYS": KEY}
    with Server(".", env, tmp / "serve.log", cwd=ROOT) as running:
        yield running


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


async def _handshake(url: str, **options) -> tuple[int, str | None, bytes]:
    """(101 and the accepted subprotocol) or (the refusal's HTTP status and body)."""
    try:
        async with websockets.connect(url.replace("http", "ws", 1), open_timeout=20, **options) as ws:
            return 101, ws.subprotocol, b""
    except websockets.exceptions.InvalidStatus as refused:
        return refused.response.status_code, None, refused.response.body or b""


def handshake(server: Server, path: str, **options) -> tuple[int, str | None, bytes]:
    return asyncio.run(_handshake(server.url + path, **options))


@pytest.mark.parametrize("path", SOCKETS)
def test_a_browser_presents_its_key_as_a_subprotocol(server, path):
    own = {"origin": server.url}  # what Chromium sends from the page the server serves
    protocols = ["avatar", f"key.{_token(KEY)}"]
    assert handshake(server, path, subprotocols=protocols, **own)[:2] == (101, "avatar")
    assert handshake(server, path, subprotocols=["avatar", f"key.{_token('wrong')}"], **own)[0] == 403
    assert handshake(server, path, subprotocols=["avatar"], **own)[0] == 403
    assert handshake(server, path, additional_headers={"Authorization": f"Bearer {KEY}"})[0] == 101  # not a browser
    assert handshake(server, path, additional_headers={"api-key": KEY})[0] == 101


@pytest.mark.parametrize("path", SOCKETS)
def test_a_page_on_another_site_cannot_open_a_socket_even_with_the_key(server, path):
    protocols = ["avatar", f"key.{_token(KEY)}"]  # the worst case: the page knows the key
    for origin in ("https://evil.example", "null", f"{server.url}.evil.example"):
        status, _, body = handshake(server, path, subprotocols=protocols, origin=origin)
        assert status == 403, origin
        if body:  # uvicorn answers with our JSON error where its WebSocket implementation can send a body
            assert json.loads(body)["error"] == "forbidden_origin"
    assert handshake(server, path, subprotocols=protocols, origin="http://localhost:5173")[0] == 101  # a local page


@pytest.mark.parametrize("kind", ["png", "jpeg", "tiff"])
def test_an_image_bomb_is_refused_from_its_header(server, kind):
    data = BOMBS[kind]()
    before = {name: server.peak_mb(name) for name in ("avatar", "avatar-pipeline")}
    start = time.perf_counter()
    r = httpx.post(
        server.url + "/api/v1/avatars",
        files={"photo": (f"bomb.{kind}", data, "application/octet-stream")},
        headers={"api-key": KEY},
        timeout=60,
    )
    took = time.perf_counter() - start
    assert r.status_code == 413 and "megapixels" in r.json()["message"], r.text
    assert took < 2, took  # was 12 s for the PNG
    for name, peak in before.items():
        assert server.peak_mb(name) - peak < 50, (name, peak, server.peak_mb(name))  # was +2.6 GB
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200


def test_hours_of_audio_to_animate_are_refused_without_decoding(server):
    data = flac_bomb(3, declared=False)  # 20 KB that decode to three hours: the length is found by decoding
    before = server.peak_mb("avatar-pipeline")
    start = time.perf_counter()
    r = httpx.post(server.url + "/api/v1/animate", files={"audio": ("bomb.flac", data)}, headers={"api-key": KEY},
                   timeout=60)  # fmt: skip
    assert r.status_code == 413 and "long" in r.json()["message"], r.text
    assert time.perf_counter() - start < 3
    assert server.peak_mb("avatar-pipeline") - before < 60
