"""The live lip-sync session (models/live/lipsync.py) in process, in real time: idle video from the start, a voice
fed as a client's TTS would feed it, an interrupt, the end; the fMP4 it sends decodes back with the client's own
audio in it and the mouth shut where the interrupt put it."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from models.avatar.controls import MotionConfig
from models.live.lipsync import LipsyncConfig, LipsyncSession
from models.media import decode_audio, probe
from models.media.audio import resample
from models.pipeline import _encode_job
from models.stream import LiveVideo, StreamStats
from models.tts import create_engine, synthesize

pytestmark = pytest.mark.unit
RATE = 24000


def _pcm(text: str) -> bytes:
    s = synthesize(create_engine("piper"), text)
    return (resample(s.audio, s.sample_rate, RATE) * 32767).astype("<i2").tobytes()


async def _run(pipeline, script) -> dict:
    r, avatar = pipeline.renderer, pipeline.avatar()
    live = LiveVideo(r.size, r.fps, pipeline.settings.video, MotionConfig(), window_s=10)
    out = {"bytes": bytearray(), "events": [], "sent": [], "jobs": []}
    t0 = time.monotonic()

    async def align(audio, rate):
        found = await asyncio.to_thread(pipeline.aligner.align, audio, rate, None, "en", live=True)
        return found.phonemes, found.source

    async def render(job):
        out["jobs"].append((time.monotonic() - t0, job.start, job.controls.jaw.copy()))
        return await asyncio.to_thread(_encode_job, r, avatar, pipeline.settings.video, StreamStats(), job)

    async def send(item):
        if isinstance(item, bytes):
            out["bytes"] += item
            out["sent"].append(time.monotonic() - t0)
        else:
            out["events"].append((time.monotonic() - t0, item))

    session = LipsyncSession(live, RATE, align, render, send, LipsyncConfig())
    runner = asyncio.create_task(session.run())
    await script(session, out, t0)
    await asyncio.wait_for(runner, 20)
    out["session"] = session
    return out


async def _feed(session, pcm: bytes, step_s: float = 0.02, speed: float = 1.0) -> None:
    step = int(step_s * RATE) * 2
    for i in range(0, len(pcm), step):
        session.feed(pcm[i : i + step])
        await asyncio.sleep(step_s / speed)


def test_idle_then_a_voice_in_real_time_then_the_end(pipeline, tmp_path):
    pcm = _pcm("Maybe both of them will bring a map.")
    marks = {}

    async def script(session, out, t0):
        await asyncio.sleep(0.8)
        marks["idle_fragments"] = len(out["sent"])
        marks["voice_at"] = time.monotonic() - t0
        await _feed(session, pcm)
        await asyncio.sleep(0.6)
        session.end()

    out = asyncio.run(_run(pipeline, script))
    assert marks["idle_fragments"] >= 2  # the video runs before anyone speaks
    events = [e for _, e in out["events"]]
    assert [e["type"] for e in events] == ["speaking", "idle", "done"]
    speaking_at = next(t for t, e in out["events"] if e["type"] == "speaking")
    first_speech = next(t for t in out["sent"] if t >= speaking_at)
    assert first_speech - (marks["voice_at"] + 0.2) < 0.5  # README: within Piper's first-sentence time, measured
    path = tmp_path / "live.mp4"
    path.write_bytes(out["bytes"])
    info = probe(path)
    wall = out["sent"][-1]
    assert info["video_codec"] == "h264" and abs(info["video_duration_s"] - wall) < 0.8  # real time, not faster
    audio, sr, _ = decode_audio(path)
    speech_s = len(pcm) / 2 / RATE
    at = next(e["at_s"] for e in events if e["type"] == "speaking")
    loud = np.abs(audio) > 0.02
    inside = loud[int(at * sr) : int((at + speech_s) * sr)].mean()
    before = loud[: int(at * sr)].mean()
    assert inside > 0.3 and before < 0.01  # the client's voice is muxed in where the face speaks, silence around it
    jaws = np.concatenate([j for _, _, j in out["jobs"]])
    fps = pipeline.renderer.fps
    # open wide somewhere in the speech (the live aligner's pieces follow the audio's arrival: one loaded CI run
    # peaked at 0.58), shut before it
    assert jaws[: int(at * fps)].max() < 0.05 and jaws[int(at * fps) : int((at + speech_s) * fps)].max() > 0.45
    assert (jaws[int(at * fps) : int((at + speech_s) * fps)] < 0).any()  # the lips shut on a bilabial


def test_an_interrupt_shuts_the_mouth_at_once(pipeline):
    pcm = _pcm("Please remember to bring the umbrella, because it will rain all afternoon in the park.")
    marks = {}

    async def script(session, out, t0):
        await asyncio.sleep(0.3)
        feeder = asyncio.create_task(_feed(session, pcm, speed=4.0))  # a TTS sends faster than real time
        await asyncio.sleep(1.6)
        marks["interrupt_at"] = time.monotonic() - t0
        session.interrupt()
        await feeder  # (what it still sends after the interrupt is a new utterance)
        session.interrupt()
        await asyncio.sleep(0.5)
        session.end()

    out = asyncio.run(_run(pipeline, script))
    cut = next((t, e) for t, e in out["events"] if e["type"] == "interrupted")
    assert cut[0] - marks["interrupt_at"] < 0.1
    after = [(t, start, jaw) for t, start, jaw in out["jobs"] if t >= cut[0]]
    assert after[0][0] - marks["interrupt_at"] < 0.1  # the next piece is rendered at once...
    assert after[0][1] == round(cut[1]["at_s"] * pipeline.renderer.fps)  # ...from where the interrupt put it...
    assert after[0][2][1:].max() < 0.1  # ...and its mouth shuts (the first frame may still be closing)
    s = out["session"]
    assert s.stats.speech_s < len(pcm) / 2 / RATE  # the rest of the speech was dropped, not played
