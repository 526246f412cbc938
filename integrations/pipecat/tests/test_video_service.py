"""RealtimeAvatarVideoService in a Pipecat pipeline, against a real realtime-avatar server: a scripted TTS hands
it Piper's audio frames as a TTS would (faster than real time, between TTSStartedFrame and TTSStoppedFrame), and
a recording sink notes when each frame comes out."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from conftest import KEY
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner
from realtime_avatar_pipecat import RealtimeAvatarVideoService

RATE, FPS = 24000, 25


class Recorder(FrameProcessor):
    """Notes every frame that passes, with its arrival time (monotonic s)."""

    def __init__(self, direction: FrameDirection):
        super().__init__(enable_direct_mode=True)
        self.direction, self.frames = direction, []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == self.direction and not isinstance(frame, StartFrame):
            self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)


async def run(service: RealtimeAvatarVideoService, script) -> tuple[list, list]:
    """Run [source, service, sink] while `script(queue)` queues frames; returns (downstream, upstream) frames."""
    up, down = Recorder(FrameDirection.UPSTREAM), Recorder(FrameDirection.DOWNSTREAM)
    worker = PipelineWorker(Pipeline([up, service, down]), cancel_on_idle_timeout=False,
                            params=PipelineParams(audio_out_sample_rate=RATE))  # fmt: skip
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        started.set()

    async def drive():
        await asyncio.wait_for(started.wait(), 30)
        await script(worker.queue_frame)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), drive()), 120)
    return down.frames, up.frames


async def say(queue, pcm: bytes, chunk_s: float = 0.02, speed: float = 5.0) -> None:
    """A TTS's frames: started, audio in 20 ms chunks at `speed` x real time, stopped."""
    await queue(TTSStartedFrame())
    step = int(chunk_s * RATE) * 2
    for at in range(0, len(pcm), step):
        await queue(TTSAudioRawFrame(pcm[at : at + step], RATE, 1))
        await asyncio.sleep(chunk_s / speed)
    await queue(TTSStoppedFrame())


def speech_audio(frames: list, after: float = 0.0) -> list[tuple[float, np.ndarray]]:
    return [(t, np.frombuffer(f.audio, np.int16)) for t, f in frames if isinstance(f, TTSAudioRawFrame) and t >= after]


def test_frames_at_the_set_fps_with_the_input_audio_in_sync(server, piper_speech):
    service = RealtimeAvatarVideoService(base_url=server.url, api_key=KEY, size=256, fps=FPS)

    async def script(queue):
        await asyncio.sleep(1.0)  # idle: the video track runs before anyone speaks
        await say(queue, piper_speech)
        await asyncio.sleep(len(piper_speech) / 2 / RATE + 1.5)

    down, up = asyncio.run(run(service, script))
    assert not [f for _, f in up if isinstance(f, ErrorFrame)]
    video = [(t, f) for t, f in down if isinstance(f, OutputImageRawFrame)]
    assert video[0][1].size == (256, 256) and video[0][1].format == "RGB"
    times = np.array([t for t, _ in video])
    fps = (len(times) - 1) / (times[-1] - times[0])
    assert abs(fps - FPS) < 1.5, fps  # frames at the set rate, idle and speaking alike
    assert np.percentile(np.diff(times), 95) < 2.5 / FPS  # no long gap (the track stays alive)
    audio = speech_audio(down)
    out = np.concatenate([a for _, a in audio]).astype(np.float32)
    sent = np.frombuffer(piper_speech, np.int16).astype(np.float32)
    assert abs(len(out) - len(sent)) / RATE < 0.3  # the whole utterance, once
    env = lambda x: np.sqrt(np.convolve(x**2, np.ones(480) / 480, "valid")[::240])  # noqa: E731  (10 ms steps)
    a, b = env(out), env(sent)
    lag = int(np.argmax(np.correlate(a[:200], b[:200], "full"))) - 199
    n = min(len(a), len(b)) - abs(lag) - 1
    aligned = (a[max(lag, 0) : max(lag, 0) + n], b[max(-lag, 0) : max(-lag, 0) + n])
    assert np.corrcoef(*aligned)[0, 1] > 0.9  # the audio frames are the input audio (AAC on the way)
    # in sync: an audio frame and the video frame of the same moment leave at the same offset from their
    # media times (pts, ns)
    vpts = np.array([f.pts for _, f in video])
    audio_out = [(t, f) for t, f in down if isinstance(f, TTSAudioRawFrame)]
    nearest = [int(np.argmin(np.abs(vpts - f.pts))) for _, f in audio_out]  # the video frame of the same moment
    skews = [abs((t - f.pts / 1e9) - (times[k] - vpts[k] / 1e9)) for (t, f), k in zip(audio_out, nearest, strict=True)]
    assert np.percentile(skews, 95) <= 0.04, np.percentile(skews, 95)
    stops = [t for t, f in down if isinstance(f, TTSStoppedFrame)]
    assert len(stops) == 1 and stops[0] >= audio[-1][0] - 0.05  # TTSStoppedFrame after the face stopped talking


def test_an_interruption_stops_both_and_the_next_utterance_plays(server, piper_speech):
    service = RealtimeAvatarVideoService(base_url=server.url, api_key=KEY, size=256, fps=FPS)
    marks = {}

    async def script(queue):
        await asyncio.sleep(0.5)
        await say(queue, piper_speech)  # ~4.5 s of speech, sent in under a second
        await asyncio.sleep(1.5)
        marks["interrupt"] = time.monotonic()
        await queue(InterruptionFrame())
        await asyncio.sleep(1.0)
        marks["second"] = time.monotonic()
        await say(queue, piper_speech[: RATE * 2 * 2])  # 2 s
        await asyncio.sleep(3.0)

    down, up = asyncio.run(run(service, script))
    assert not [f for _, f in up if isinstance(f, ErrorFrame)]
    cut = marks["interrupt"]
    late_audio = [t for t, a in speech_audio(down, cut) if t < marks["second"] and np.abs(a).max() > 300]
    assert not late_audio or late_audio[-1] - cut <= 0.1, late_audio[-1] - cut  # the voice stops within 100 ms
    video_after = [t for t, f in down if isinstance(f, OutputImageRawFrame) and cut < t < marks["second"]]
    assert video_after and video_after[0] - cut < 0.3  # the face goes on (idle, mouth shut)
    second = [a for t, a in speech_audio(down, marks["second"])]
    assert second and sum(len(a) for a in second) / RATE > 1.5  # the next utterance plays whole


def test_a_dead_server_or_a_wrong_key_is_an_error_frame(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    for url, key, needle in [(dead, None, "unreachable"), (server.url, "wrong", "refused the API key")]:
        service = RealtimeAvatarVideoService(base_url=url, api_key=key)

        async def script(queue):
            await asyncio.sleep(0.5)

        t = time.monotonic()
        down, up = asyncio.run(run(service, script))
        errors = [f for _, f in up if isinstance(f, ErrorFrame)]
        assert errors and needle in errors[0].error, [e.error for e in errors]
        assert time.monotonic() - t < 15  # the pipeline ends: nothing hangs
