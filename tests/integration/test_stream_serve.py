"""Streaming against real `bentoml serve` processes on loopback: fragments arrive while the video is made,
concurrent streams share batched render calls, and a crash mid-stream cuts the connection."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from models.evaluation.streaming import measure_stream
from models.media import probe
from tests.helpers import stream_cut_by
from tests.integration.test_serve import batch_sizes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG = " ".join(f"This is sentence number {i} of a long answer, spoken while it is made." for i in range(8))


def _stream(url: str, text: str, **extra):
    t0 = time.perf_counter()
    with httpx.stream("POST", url + "/api/v1/stream", json={"text": text, **extra}, timeout=120) as r:
        assert r.status_code == 200, r.read()
        report = measure_stream(r.iter_raw(), t0)
    return report


def test_fragments_arrive_before_the_stream_is_made(serve):
    server = serve("services.pipeline:AvatarPipeline")
    _stream(server.url, "Warm up.")
    report = _stream(server.url, LONG)
    assert report.ttff_ms is not None and report.fragments > 20
    assert report.ttff_ms < 0.4 * report.total_ms  # the first fragment came long before the last
    assert report.media_duration_s > 25
    assert report.stalls == 0, report  # made faster than it plays: a player never waits

    # speech alone streams too: the first audio bytes come long before the last
    t0 = time.perf_counter()
    with httpx.stream("POST", server.url + "/v1/audio/speech", json={"input": LONG, "response_format": "mp3"}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
        arrivals = [(time.perf_counter() - t0, len(b)) for b in r.iter_raw() if b]
    assert len(arrivals) > 5 and arrivals[0][0] < 0.3 * arrivals[-1][0]


def test_concurrent_streams_share_batched_render_calls(serve):
    server = serve("services.pipeline:AvatarPipeline", AVATAR__SERVING__BATCHING="true")
    texts = [f"Stream {i} speaks. It says a few words, then a few more." for i in range(4)]
    with ThreadPoolExecutor(len(texts)) as pool:
        reports = list(pool.map(lambda t: _stream(server.url, t), texts))
    assert all(r.ttff_ms is not None and r.media_duration_s > 2 for r in reports)
    sizes = batch_sizes(httpx.get(server.url + "/metrics", timeout=30).text)
    avatar = [v for k, v in sizes.items() if "avatar" in k.lower() and "pipeline" not in k.lower()]
    assert avatar and avatar[0][0] > avatar[0][1], f"stream chunks never shared a batch: {sizes}"


def test_split_mode_streams_and_a_crash_mid_stream_cuts_the_connection(serve):
    tts = serve("services.tts:TTSService")
    avatar = serve("services.avatar:AvatarService")
    api = serve("services.pipeline:AvatarPipeline", AVATAR_TTS_URL=tts.url, AVATAR_RENDER_URL=avatar.url)
    ok = httpx.post(api.url + "/api/v1/stream", json={"text": "Split mode streams too."}, timeout=60)
    assert ok.status_code == 200 and probe(ok.content)["n_frames"] > 10

    received = stream_cut_by(api.url, {"text": LONG * 2}, avatar.kill)  # the renderer dies after the first fragment
    assert received[4:8] == b"ftyp"
    assert httpx.get(api.url + "/livez", timeout=10).status_code == 200
    down = httpx.post(api.url + "/api/v1/stream", json={"text": "Anyone there?"}, timeout=60)
    assert down.status_code == 503 and down.json()["error"] == "dependency_unavailable"  # before any byte
