"""Faults and soak against a real all-in-one `bentoml serve`: a dependency's worker killed mid-load, and a few
hundred requests in a row. Nothing hangs, nothing is lost silently, the service comes back, memory stays flat."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _generate(url: str, text: str = "Hello there.") -> tuple[int, dict, float]:
    t = time.perf_counter()
    try:
        r = httpx.post(url + "/api/v1/generate", json={"text": text}, timeout=60)
    except httpx.HTTPError as exc:  # a client-side timeout or a cut connection is a failure of this test
        return 0, {"error": type(exc).__name__}, time.perf_counter() - t
    return r.status_code, dict(r.headers) | {"body": r.text[:200]}, time.perf_counter() - t


def _wait(url: str, path: str, status: int, within: float) -> float:
    """Seconds until `path` answers `status` (each probe bounded), or fail."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < within:
        try:
            if httpx.get(url + path, timeout=5).status_code == status:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} did not answer {status} within {within} s")


@pytest.mark.parametrize("service", ["tts", "avatar"])
def test_a_dependency_killed_mid_load(serve, service):
    server = serve("services.pipeline:AvatarPipeline")
    assert _generate(server.url)[0] == 200
    with ThreadPoolExecutor(6) as pool:
        load = [pool.submit(_generate, server.url, f"Request {i} under load, while a worker dies.") for i in range(12)]
        time.sleep(0.3)
        (pid,) = server.worker_pids(service)
        os.kill(pid, signal.SIGKILL)
        t = time.perf_counter()
        ready = httpx.get(server.url + "/readyz", timeout=10)
        health = httpx.get(server.url + "/health", timeout=10)
        probe_s = time.perf_counter() - t
        results = [f.result() for f in load]
    for status, headers, seconds in results:
        assert seconds < 45, f"a request hung for {seconds:.0f} s"
        assert status == 200 or (status == 503 and "retry-after" in headers), headers
    assert probe_s < 5, f"readiness and health took {probe_s:.1f} s"
    if ready.status_code == 503:  # caught while the worker was down: health names it
        assert health.status_code == 503 and "down" in health.json()["dependencies"][service]
    _wait(server.url, "/readyz", 200, 90)  # BentoML restarts the worker
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "healthy"
    assert _generate(server.url)[0] == 200


def test_readiness_is_fast_and_honest_while_a_dependency_is_down(serve):
    tts = serve("services.tts:TTSService")
    api = serve("services.pipeline:AvatarPipeline", AVATAR_TTS_URL=tts.url)
    tts.kill()
    t = time.perf_counter()
    ready = httpx.get(api.url + "/readyz", timeout=10)
    health = httpx.get(api.url + "/health", timeout=10)
    assert time.perf_counter() - t < 5
    assert ready.status_code == 503 and health.status_code == 503
    deps = health.json()["dependencies"]
    assert deps["tts"].startswith("down") and deps["avatar"] == "ready"
    assert httpx.get(api.url + "/livez", timeout=10).status_code == 200


def test_soak_memory_stays_flat(serve):
    """350 requests; after a warm-up, memory must not grow with the number of requests served. The texts cycle
    through a fixed set: onnxruntime's and the allocator's arenas grow with every new input shape until they
    plateau (measured: the TTS worker +40 MB over its first ~300 distinct texts, then flat), which is not a leak,
    while a leak per request shows whatever the text. Per process over 500 requests after a 50-request warm-up
    (here): avatar +14 MB, TTS +7-11 MB (mostly in the first 300), API +6 MB. All processes together over 250
    after a 100-request warm-up: a CI run measured +45 MB (from 1127 MB); what the last 125 add is printed. A
    leak of what one request makes (its frames: 1.8 MB raw at 128 px, 3 s, 12 fps; its MP4: ~0.1 MB) grows
    the same in both halves: 450 MB or 25 MB over the run, 225 or 12 MB in the second half."""
    server = serve("services.pipeline:AvatarPipeline")
    texts = [f"Soak request number {i}, of a few different lengths{'.' * (i % 3)}" for i in range(10)]
    for i in range(100):  # warm-up: every text's shapes, caches, pools, allocator arenas
        assert _generate(server.url, texts[i % 10])[0] == 200
    rss = [server.rss_mb()]
    for i in range(250):
        status, headers, _ = _generate(server.url, texts[i % 10])
        assert status == 200, headers
        if i in (124, 249):
            rss.append(server.rss_mb())
    growth, late = rss[2] - rss[0], rss[2] - rss[1]
    print(f"soak: {growth:+.1f} MB over 250 requests after warm-up (from {rss[0]:.0f} MB), {late:+.1f} MB late")
    assert growth < 64, f"memory grew {growth:.0f} MB over 250 requests (from {rss[0]:.0f} MB)"
    assert late < 32, f"memory grew {late:.0f} MB over the last 125 requests: it does not level off"
