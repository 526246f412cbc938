"""Soak: the API worker's memory levels off under a steady stream of requests (services/traffic.py).

Every request used to leave a timer in the event loop for `serving.timeout_s` (300 s): BentoML's request timeout,
never cancelled, holding the request's context (its tracing span...). At a few hundred requests a second the API
worker grew by ~5 KB a request, hundreds of MB under load. Invalid bodies are the fastest requests, so the ones
that show it soonest. And every distinct path (each video's URL, each path a scanner tries) added time series to
the request metrics, for good: they are labelled by route now.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from services.launcher import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What a fuzzing or broken client sends: each is refused with a 400 before any backend is called.
INVALID = [
    ("/api/v1/generate", b"{not json"),
    ("/api/v1/generate", b'{"text": 5}'),
    ("/api/v1/generate", b'{"text": "' + b"a" * 6000 + b'"}'),
    ("/api/v1/generate", b'{"text": "hi", "size": "big", "fps": true, "seed": -1}'),
    ("/api/v1/generate", b"[]"),
    ("/api/v1/generate", b""),
    ("/v1/audio/speech", b'{"input": "", "voice": 7}'),
    ("/v1/audio/speech", b'{"input": "hi", "response_format": "ogg"}'),
]
BLOCK = 1500  # requests between two readings
BLOCKS = 4  # after a warm-up block
CONCURRENCY = 8
MAX_GROWTH_MB = 4.0  # over the last 3 blocks (4500 requests); it was ~3-5 KB a request (15-20 MB) before the fix
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One API server for the soak tests (with its TTS and avatar services, never called here)."""
    tmp = tmp_path_factory.mktemp("api-memory")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_FPS": "12"}
    with Server("services.pipeline:AvatarPipeline", env, tmp / "serve.log", cwd=ROOT) as started:
        assert started.worker_pids("avatar-pipeline"), "no API worker found"
        yield started


async def _send_block(url: str, n: int, request=None) -> dict[int, int]:
    """n requests, CONCURRENCY at a time (`request(client, i)`; default: the i-th invalid body); each status's
    count."""
    statuses: dict[int, int] = {}
    todo = iter(range(n))
    headers = {"content-type": "application/json"}

    async def invalid(client: httpx.AsyncClient, i: int) -> httpx.Response:
        path, body = INVALID[i % len(INVALID)]
        return await client.post(path, content=body, headers=headers)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in todo:
            r = await (request or invalid)(client, i)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return statuses


def test_api_worker_memory_levels_off_under_invalid_requests(server):
    t0 = time.perf_counter()
    statuses = asyncio.run(_send_block(server.url, BLOCK))  # warm-up: first-use caches, connection buffers
    assert set(statuses) == {400}, statuses
    rss = [server.rss_mb("avatar-pipeline")]
    for _ in range(BLOCKS):
        statuses = asyncio.run(_send_block(server.url, BLOCK))
        assert set(statuses) == {400}, statuses
        rss.append(server.rss_mb("avatar-pipeline"))
    elapsed = time.perf_counter() - t0

    readings = ", ".join(f"{mb:.1f}" for mb in rss)
    growth = rss[-1] - rss[-4]
    print(f"API worker RSS after each {BLOCK} requests (MB): {readings}; {(BLOCKS + 1) * BLOCK} in {elapsed:.0f} s")
    assert growth < MAX_GROWTH_MB, (
        f"the API worker grew {growth:.1f} MB over the last {3 * BLOCK} requests "
        f"({growth * 1e3 / (3 * BLOCK):.2f} KB a request); RSS after each block: {readings} MB"
    )
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200


def test_distinct_paths_add_no_metrics_series(server):
    """Each video has its own URL, and scanners try any path: the metrics (and the memory) must not grow with
    them. Before, each distinct path added ~20 series (~4.6 KB to every /metrics answer)."""

    def distinct(block: int):
        async def get(client: httpx.AsyncClient, i: int) -> httpx.Response:
            if i % 2:
                return await client.get(f"/api/v1/videos/20260101-120000-{block:02d}{i:06d}.mp4")  # no such video
            return await client.get(f"/scan-{block}-{i}/admin.php")  # no such route

        return get

    def metrics_size() -> int:
        return len(httpx.get(server.url + "/metrics", timeout=30).content)

    n = 600
    assert set(asyncio.run(_send_block(server.url, n, distinct(0)))) == {404}  # warm-up: the routes' first series
    sizes, rss = [metrics_size()], [server.rss_mb("avatar-pipeline")]
    for block in range(1, 4):
        assert set(asyncio.run(_send_block(server.url, n, distinct(block)))) == {404}
        sizes.append(metrics_size())
        rss.append(server.rss_mb("avatar-pipeline"))
    print(f"/metrics bytes after each {n} distinct paths: {sizes}; API worker RSS (MB): {rss}")
    # the counters' digits may grow; a series per path would be ~2.8 MB a block
    assert sizes[-1] - sizes[0] < 2000, f"/metrics grew with the paths requested: {sizes} bytes"
    assert rss[-1] - rss[0] < MAX_GROWTH_MB, f"the API worker grew with the paths requested: {rss} MB"
