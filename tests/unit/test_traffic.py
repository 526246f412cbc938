"""The request timeout (services/traffic.py): BentoML's behaviour (504 when nothing was sent in time), without a
timer left in the event loop for every request answered."""

from __future__ import annotations

import asyncio

import pytest

from services.traffic import TimeoutMiddleware, install

pytestmark = pytest.mark.unit


async def _respond(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _hang(scope, receive, send) -> None:
    await asyncio.sleep(60)


async def _crash(scope, receive, send) -> None:
    raise RuntimeError("boom")


async def _run(app, timeout: float = 5.0) -> list[dict]:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    await TimeoutMiddleware(app, timeout)({"type": "http", "path": "/"}, receive, send)
    return sent


def _pending_timers(loop) -> int:
    return sum(not h.cancelled() for h in loop._scheduled)


def test_an_answered_request_leaves_no_timer_behind():
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        before = _pending_timers(loop)
        for _ in range(200):
            sent = await _run(_respond)
            assert sent[0]["status"] == 200 and sent[-1]["body"] == b"ok"
        return before, _pending_timers(loop)

    before, after = asyncio.run(main())
    assert after == before  # BentoML's own left 200 timers for `timeout` seconds, each holding its request's context


def test_nothing_sent_in_time_is_a_504_and_the_app_is_cancelled():
    sent = asyncio.run(_run(_hang, timeout=0.05))
    assert sent[0]["status"] == 504 and b"0.05 seconds" in sent[-1]["body"]


def test_an_app_that_fails_before_sending_fails_at_once():
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(asyncio.wait_for(_run(_crash, timeout=60), 5))


def test_install_replaces_the_middleware_bentoml_builds_apps_with():
    from bentoml._internal.server.http import traffic

    install()
    assert traffic.TimeoutMiddleware is TimeoutMiddleware


def test_metrics_are_labelled_by_route_not_by_path():
    from _bentoml_impl.server.mount import PassiveMount
    from fastapi import APIRouter, FastAPI, WebSocket
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from services.traffic import UNMATCHED, RouteLabels

    router = APIRouter()  # as the route groups are (services/routes_*.py)

    @router.get("/api/v1/videos/{name}")
    async def video(name: str) -> str:
        return name

    @router.websocket("/api/v1/live")
    async def live(ws: WebSocket) -> None:
        await ws.close()

    api = FastAPI()
    api.include_router(router)

    @api.post("/api/v1/generate")
    async def generate() -> str:
        return ""

    outer = Starlette(routes=[Route("/healthz", lambda r: PlainTextResponse("ok")), PassiveMount("/", api)])
    label = RouteLabels(outer.routes).of
    assert label("/api/v1/videos/20260101-120000-abc.mp4") == "/api/v1/videos/{name}"
    assert label("/api/v1/videos/another.mp4") == "/api/v1/videos/{name}"
    assert label("/api/v1/generate") == "/api/v1/generate"  # a GET of it too (405)
    assert label("/api/v1/live") == "/api/v1/live"
    assert label("/healthz") == "/healthz"
    assert label("/wp-admin/x.php") == label("/.env") == UNMATCHED
