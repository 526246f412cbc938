"""The Origin check of WebSocket upgrades (cross-site WebSocket hijacking): the middleware in front of a tiny app
with a socket; the real server: tests/integration/test_exposure.py."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from models.settings import load_settings
from services.origins import OriginCheck, normalized, origin_allowed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        ("http://127.0.0.1:3000", "127.0.0.1:3000", [], True),  # the page the server serves itself
        ("https://avatar-abc.a.run.app", "avatar-abc.a.run.app", [], True),  # same, behind TLS
        ("https://avatar-abc.a.run.app:443", "avatar-abc.a.run.app", [], True),  # default port written out
        ("HTTPS://Avatar-ABC.a.run.app", "avatar-abc.a.run.app", [], True),
        ("http://localhost:8080", "gpu-box:3000", [], True),  # a page on this machine
        ("http://[::1]:5173", "gpu-box:3000", [], True),
        ("http://app.localhost", "gpu-box:3000", [], True),
        ("https://evil.example", "127.0.0.1:3000", [], False),
        ("http://127.0.0.1:3000.evil.example", "127.0.0.1:3000", [], False),
        ("http://localhost.evil.example", "127.0.0.1:3000", [], False),
        ("https://avatar-abc.a.run.app", "127.0.0.1:3000", [], False),  # the same name on another host
        ("http://avatar-abc.a.run.app", "avatar-abc.a.run.app:443", [], False),  # scheme and port differ
        ("null", "127.0.0.1:3000", [], False),  # sandboxed frames, file:// pages
        ("file://", "127.0.0.1:3000", [], False),
        ("https://app.example.com", "api.example.com", ["https://app.example.com"], True),
        ("https://app.example.com", "api.example.com", ["https://APP.example.com:443/"], True),
        ("https://other.example.com", "api.example.com", ["https://app.example.com"], False),
        ("https://evil.example", "127.0.0.1:3000", ["*"], True),
    ],
)
def test_which_pages_may_open_a_socket(origin, host, allowed, ok):
    assert origin_allowed(origin, host, allowed) is ok


def test_origins_are_compared_as_browsers_write_them():
    assert normalized("https://a.example:443") == "https://a.example"
    assert normalized("http://a.example:8080/path?q") == "http://a.example:8080"
    assert normalized("ws://a.example") is None and normalized("") is None and normalized("http://") is None


def _client(allowed: list[str]) -> TestClient:
    async def echo(ws):
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/api/v1/live", echo)])
    return TestClient(OriginCheck(app, allowed), base_url="http://127.0.0.1:3000")


def _opens(client: TestClient, headers: dict) -> bool:
    try:
        with client.websocket_connect("/api/v1/live", headers=headers) as ws:
            return ws.receive_text() == "hello"
    except WebSocketDisconnect:
        return False
    except Exception as exc:  # Starlette's WebSocketDenialResponse, where the test client supports it
        if type(exc).__name__ == "WebSocketDenialResponse":
            assert exc.status_code == 403 and exc.json()["error"] == "forbidden_origin"
            return False
        raise


def test_a_foreign_page_is_refused_before_the_upgrade_and_others_pass():
    client = _client([])
    assert not _opens(client, {"origin": "https://evil.example"})
    assert _opens(client, {"origin": "http://127.0.0.1:3000"})  # its own page
    assert _opens(client, {})  # no Origin: not a browser (still keyed where keys are set)
    assert _opens(_client(["https://evil.example"]), {"origin": "https://evil.example"})


def test_behind_a_proxy_the_forwarded_host_is_the_servers_name():
    headers = {"origin": "https://avatar.example.com", "x-forwarded-host": "avatar.example.com"}
    assert _opens(_client([]), headers)


def test_plain_http_is_left_to_cors():
    async def ok(request):
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("ok")

    from starlette.routing import Route

    client = TestClient(OriginCheck(Starlette(routes=[Route("/x", ok)]), []))
    assert client.get("/x", headers={"origin": "https://evil.example"}).text == "ok"


def test_allowed_origins_from_the_environment():
    settings = load_settings(env={"AVATAR_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
    assert settings.serving.allowed_origins == ["https://a.example", "https://b.example"]
    assert load_settings(env={}).serving.allowed_origins == []
