"""Whole MP4 files from rendered frames: a batch of planned videos rendered together (`render_videos`, the avatar
service's path) and one video made while its speech arrives (`render_as_spoken`, `Pipeline.generate`). Rendering
and x264 run on different threads (OpenCV, numpy and the encoder release the GIL); each stage's busy time is kept.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.avatar.controls import Controls, MotionConfig
from models.avatar.portrait import Avatar, PortraitRenderer
from models.errors import InvalidInput
from models.media import Mp4Writer
from models.settings import VideoSettings
from models.spoken import Ahead, SpeechPlan
from models.tts.base import Speech, SpeechChunk

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class VideoJob:
    """One video to make: its avatar, its per-frame plan, its audio and where the MP4 goes."""

    avatar: Avatar
    plan: Controls
    audio: np.ndarray
    sample_rate: int
    out_path: Path
    plan_s: float = 0.0  # time spent planning the controls (part of the avatar stage)


@dataclass
class StageTimes:
    render_s: float = 0.0
    encode_s: float = 0.0
    tts_s: float = 0.0  # busy time of the speech thread (render_as_spoken)
    plan_s: float = 0.0
    n_frames: int = 0


def render_videos(
    renderer: PortraitRenderer,
    jobs: list[VideoJob],
    video: VideoSettings,
    chunk: int = 25,
    progress: Progress | None = None,
) -> list[StageTimes]:
    """Render the frames of all jobs together, chunk by chunk (one batch per chunk), and encode each job into
    its MP4 on its own encoder thread, so encoding overlaps the rendering of the next chunk.

    Render time of a shared chunk is attributed to the jobs in proportion to their frames.
    """
    times = [StageTimes() for _ in jobs]
    longest = max(len(j.plan) for j in jobs)
    with contextlib.ExitStack() as stack:
        threads = 1 if len(jobs) > 1 else 0  # several videos: one x264 thread each beats oversubscribed pools
        writers = [stack.enter_context(_writer(renderer, j, video, threads)) for j in jobs]
        encoders = [stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="x264")) for _ in jobs]
        pending: list[Future] = [e.submit(_timed, times[k], w.write_audio, jobs[k].audio, jobs[k].sample_rate)
                                 for k, (e, w) in enumerate(zip(encoders, writers, strict=True))]  # fmt: skip
        for start in range(0, longest, chunk):
            part = [
                (k, range(start, min(start + chunk, len(j.plan)))) for k, j in enumerate(jobs) if start < len(j.plan)
            ]
            t = time.perf_counter()
            frames = renderer.render_batch([(jobs[k].avatar, jobs[k].plan, r) for k, r in part])
            elapsed, n = time.perf_counter() - t, sum(len(r) for _, r in part)
            for (k, r), f in zip(part, frames, strict=True):
                times[k].render_s += elapsed * len(r) / n
                pending.append(encoders[k].submit(_timed, times[k], writers[k].write_frames, f))
            pending = _wait_some(pending, keep=2 * len(jobs))  # bounded memory: at most ~2 chunks queued per job
            if progress:
                progress("render", min(start + chunk, longest), longest)
        _wait_some(pending, keep=0)
        for k, w in enumerate(writers):
            _timed(times[k], w.close)  # flushes the encoder and renames the finished file into place
    return times


@dataclass
class SpokenJob:
    """One video to make as its speech arrives: the avatar, its motion (with the seed) and where the MP4 goes."""

    avatar: Avatar
    motion: MotionConfig
    out_path: Path


def render_as_spoken(
    renderer: PortraitRenderer,
    job: SpokenJob,
    pieces: Iterable[SpeechChunk],
    video: VideoSettings,
    chunk: int = 25,
    progress: Progress | None = None,
) -> tuple[Speech, StageTimes]:
    """One MP4 made while its speech is synthesised: a thread synthesises sentence k+1 while sentence k is
    planned, rendered and encoded (x264 on its own thread), so speech, rendering and encoding overlap. The plan
    grows piece by piece as a stream's does (models/spoken.py). Nothing is written before the first piece."""
    times, ahead = StageTimes(), Ahead(pieces)
    spoken = iter(ahead)
    if (first := next(spoken, None)) is None:
        raise InvalidInput("nothing to say: the text produced no speech", field="text")
    plan, said, sr = SpeechPlan(renderer.fps, job.motion, first.sample_rate), [], first.sample_rate
    writer = Mp4Writer(job.out_path, renderer.size, renderer.size, renderer.fps, sr, preset=video.preset,
                       crf=video.crf, params=video.x264_params)  # fmt: skip
    with writer, ThreadPoolExecutor(1, thread_name_prefix="x264") as encoder:
        pending: list[Future] = []
        for piece in itertools.chain([first], spoken):
            said.append(piece)
            t = time.perf_counter()
            audio, controls = plan.add(piece)
            times.plan_s += time.perf_counter() - t
            pending.append(encoder.submit(_timed, times, writer.write_audio, audio, sr))
            for frames in _render_chunks(renderer, job.avatar, controls, chunk, times):
                pending.append(encoder.submit(_timed, times, writer.write_frames, frames))
                pending = _wait_some(pending, keep=2)  # bounded memory: at most ~2 chunks queued
                times.n_frames += len(frames)
                if progress:
                    progress("render", times.n_frames, len(plan))
        _wait_some(pending, keep=0)
        _timed(times, writer.close)  # flushes the encoder and renames the finished file into place
    times.tts_s = ahead.busy_s
    return Speech.join(said), times


def _render_chunks(renderer: PortraitRenderer, avatar: Avatar, controls: Controls | None, chunk: int,
                   times: StageTimes) -> Iterator[np.ndarray]:  # fmt: skip
    """One render thread fewer than the setting: speech synthesis and x264 run beside the rendering and keep a
    core busy (on two cores, two render threads beside them measured slower than one: RTF 0.123 against 0.114 in
    the same run, docs "Cheaper parts")."""
    for start in range(0, 0 if controls is None else len(controls), chunk):
        t = time.perf_counter()
        span = range(start, min(start + chunk, len(controls)))
        (frames,) = renderer.render_batch([(avatar, controls, span)], threads=max(1, renderer.threads - 1))
        times.render_s += time.perf_counter() - t
        yield frames


def _writer(renderer: PortraitRenderer, job: VideoJob, video: VideoSettings, threads: int) -> Mp4Writer:
    size, fps, sr = renderer.size, renderer.fps, job.sample_rate
    return Mp4Writer(job.out_path, size, size, fps, sr, preset=video.preset, crf=video.crf, threads=threads,
                     params=video.x264_params)  # fmt: skip


def _timed(times: StageTimes, fn, *args) -> None:
    t = time.perf_counter()
    fn(*args)
    times.encode_s += time.perf_counter() - t


def _wait_some(pending: list[Future], keep: int) -> list[Future]:
    """Wait for the oldest futures until at most `keep` remain; re-raises the first error."""
    while len(pending) > keep:
        pending.pop(0).result()
    return pending
