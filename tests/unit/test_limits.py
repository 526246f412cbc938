"""The per-worker limits of services/app.py's ConcurrencyLimit in front of a tiny app: all requests, and the
requests that decode long audio uploads (each holds minutes of samples), with 429 + Retry-After beyond either."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from models.settings import load_settings
from services.app import ConcurrencyLimit

pytestmark = pytest.mark.unit


def _app(release: asyncio.Event) -> Starlette:
    async def slow(_):
        await release.wait()
        return PlainTextResponse("ok")

    paths = ["/api/v1/animate", "/api/v1/animate/stream", "/v1/audio/transcriptions", "/api/v1/generate"]
    return Starlette(routes=[Route(p, slow, methods=["POST"]) for p in paths])


async def _burst(limit: int, audio_limit: int, plan: list[str]) -> list[int]:
    release = asyncio.Event()
    app = ConcurrencyLimit(_app(release), limit=limit, audio_limit=audio_limit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        tasks = []
        for path in plan:
            tasks.append(asyncio.create_task(client.post(path)))
            await asyncio.sleep(0.01)  # in this order
        await asyncio.sleep(0.05)
        release.set()
        answers = await asyncio.gather(*tasks)
    for r in answers:
        if r.status_code == 429:
            assert r.headers["retry-after"] == "2" and r.json()["error"] == "overloaded"
    return [r.status_code for r in answers]


def test_audio_uploads_have_their_own_smaller_limit():
    plan = ["/api/v1/animate", "/v1/audio/transcriptions", "/api/v1/animate/stream", "/api/v1/generate"]
    assert asyncio.run(_burst(8, 2, plan)) == [200, 200, 429, 200]  # the third audio upload waits its turn


def test_the_overall_limit_still_holds():
    assert asyncio.run(_burst(2, 4, ["/api/v1/generate", "/api/v1/animate", "/api/v1/generate"])) == [200, 200, 429]


def test_the_audio_limit_is_a_setting():
    assert load_settings(env={}).audio_in.max_concurrent == 4
    assert load_settings(env={"AVATAR__AUDIO_IN__MAX_CONCURRENT": "2"}).audio_in.max_concurrent == 2
