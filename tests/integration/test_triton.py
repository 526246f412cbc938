"""Triton as the runners' runtime: a real Triton Inference Server (services_triton, through PyTriton) under the
BentoML API (AVATAR_TTS_URL / AVATAR_RENDER_URL = triton://...), against the BentoML runners on the same text."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from models.media import decode_audio, decode_frames
from services.launcher import Server, TritonServer, triton_missing
from tests.helpers import stream_cut_by
from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MISSING = triton_missing(ROOT)
if MISSING:
    pytest.skip(f"Triton: {MISSING}", allow_module_level=True)

TEXT = "Maybe both of them will bring a map, and a blue umbrella."
STEADY = {"AVATAR__TTS__NOISE_SCALE": "0", "AVATAR__TTS__NOISE_W_SCALE": "0"}  # the same text, the same samples


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Triton serving both units, the API over it, and the all-in-one BentoML server, in one data folder."""
    tmp = tmp_path_factory.mktemp("triton")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_FPS": "12", **STEADY}
    triton = TritonServer(env, tmp / "triton.log", cwd=ROOT).start().wait_ready(300)
    over = {"AVATAR_TTS_URL": triton.triton_url, "AVATAR_RENDER_URL": triton.triton_url}
    api = Server("services.pipeline:AvatarPipeline", {**env, **over}, tmp / "api.log", cwd=ROOT).start()
    bento = Server("services.pipeline:AvatarPipeline", env, tmp / "bento.log", cwd=ROOT).start()
    servers = {"triton": triton, "api": api.wait_ready(), "bento": bento.wait_ready(), "env": env, "tmp": tmp}
    yield servers
    for s in (api, bento, servers["triton"]):
        s.stop()


def _generate(url: str, text: str = TEXT, timeout: float = 120) -> httpx.Response:
    return httpx.post(url + "/api/v1/generate", json={"text": text, "seed": 7}, timeout=timeout)


def _video(url: str, response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    return httpx.get(url + response.json()["video_url"], timeout=60).content


def test_generate_over_triton_equals_the_bentoml_runners(stack):
    videos, meta = {}, {}
    for name in ("api", "bento"):
        r = _generate(stack[name].url)
        videos[name], meta[name] = _video(stack[name].url, r), r.json()["metadata"]
    assert meta["api"]["mouth"] == meta["bento"]["mouth"] == "phonemes"
    assert meta["api"]["n_frames"] == meta["bento"]["n_frames"]
    (a, sr_a, _), (b, sr_b, _) = (decode_audio(videos[n]) for n in ("api", "bento"))
    assert sr_a == sr_b and abs(len(a) - len(b)) <= sr_a // 100
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).mean() < 0.01, "the same text gave different speech"
    fa, fb = decode_frames(videos["api"]), decode_frames(videos["bento"])
    assert fa.shape == fb.shape
    diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16)).mean(axis=(1, 2, 3))
    print(f"frames over Triton against BentoML's: mean abs difference {diff.mean():.3f} (max {diff.max():.3f})")
    assert diff.max() < 2.0, "the same speech and seed gave a different face"


def test_a_stream_over_triton(stack):
    with httpx.stream("POST", stack["api"].url + "/api/v1/stream", json={"text": TEXT}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("video/mp4")
        data = r.read()
    frames = decode_frames(data)
    audio, sr, _ = decode_audio(data)
    assert len(frames) >= 12 * 2 and len(audio) / sr > 2.0


def test_concurrent_requests_form_triton_batches(stack):
    before = stack["triton"].metrics()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _generate(stack["api"].url, f"Request {i} of eight."), range(8)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    after = stack["triton"].metrics()
    for model in ("tts", "render"):
        counts = ("nv_inference_exec_count", "nv_inference_request_success")
        runs, items = (after[(k, model)] - before.get((k, model), 0) for k in counts)
        print(f"{model}: {items:.0f} requests in {runs:.0f} executions")
        assert items >= 8 and runs < items, (model, runs, items)
        # the GKE variant's autoscalers read this one (configs/deploy/gke-triton.yaml)
        assert ("nv_inference_queue_duration_us", model) in after


def test_the_control_model_calls_only_its_listed_methods(stack):
    import asyncio

    from services.triton_client import TritonDependency, TritonError

    async def ask(method: str):
        return await TritonDependency(stack["triton"].triton_url, "avatar")._control(method)

    assert asyncio.run(ask("list_avatars"))[0]["id"] == "default"
    with pytest.raises(TritonError, match="unknown method '_ensure'"):
        asyncio.run(ask("_ensure"))


def test_triton_killed_mid_stream_gives_a_fast_503_and_recovers(stack):
    api, triton = stack["api"], stack["triton"]
    long_text = " ".join(["This long answer keeps the stream busy while its runtime goes away."] * 6)
    t = time.perf_counter()
    received = stream_cut_by(api.url, {"text": long_text}, triton.kill)  # the runtime dies after the first fragment
    assert received[4:8] == b"ftyp" and time.perf_counter() - t < 30, "the stream hung after Triton died"

    t = time.perf_counter()
    down = _generate(api.url, timeout=30)
    assert time.perf_counter() - t < 5 and down.status_code == 503 and down.headers["retry-after"], down.text
    assert down.json()["error"] == "dependency_unavailable"
    assert httpx.get(api.url + "/readyz", timeout=10).status_code == 503
    assert httpx.get(api.url + "/livez", timeout=10).status_code == 200

    env, tmp = stack["env"], stack["tmp"]
    stack["triton"] = TritonServer(env, tmp / "triton-again.log", cwd=ROOT, ports=triton.ports).start()
    stack["triton"].wait_ready(300)
    deadline = time.time() + 60
    while httpx.get(api.url + "/readyz", timeout=10).status_code != 200:
        assert time.time() < deadline, "the API did not come back after Triton did"
        time.sleep(0.5)
    assert _generate(api.url).status_code == 200
