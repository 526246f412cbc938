"""Streaming: a talking video that plays while it is made. A stage beside the MP4 path (`models/pipeline.py`),
built from the same engines, renderer and face plan.

The text is cut into pieces (sentences; a long first sentence at a clause, so the first audio exists sooner).
Each piece of speech extends the face plan (`SpeechPlan` in models/spoken.py: continuity across the joins) and
becomes chunks of frames to render and encode (`ChunkJob`: the first ones short, so the first fragment is out
early). Encoded chunks and the audio go into one fMP4 (`FragmentMuxer`). `LiveVideo` holds that per-stream
state and does no rendering itself, so the same object drives a stream in process (`stream_local`) or across
services, where the chunks of concurrent streams are rendered in shared batches (services/streaming.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from models.avatar.controls import Controls, MotionConfig
from models.media.fragments import EncodedChunk, FragmentMuxer
from models.settings import VideoSettings
from models.spoken import Ahead, SpeechPlan
from models.tts.base import SpeechChunk

# Frames per chunk, from the start of each piece: short at first (the first fragment leaves early, and the player
# gets the start of a piece while the rest renders), then one-second GOPs.
CHUNK_FRAMES = (6, 12, 25)


@dataclass
class ChunkJob:
    """Frames [start, start + len(controls)) of a stream, to render and encode."""

    start: int
    controls: Controls


@dataclass
class StreamStats:
    """What a stream cost, filled in as it runs (times in ms from the start of the stream)."""

    first_fragment_ms: float | None = None
    tts_ms: float = 0.0
    render_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0
    audio_duration_s: float = 0.0
    n_frames: int = 0
    pieces: int = 0

    @property
    def rtf(self) -> float:
        return self.total_ms / 1000 / max(self.audio_duration_s, 1e-6)

    def as_dict(self) -> dict:
        out = {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}
        return out | {"rtf": round(self.rtf, 4)}


@dataclass
class LiveVideo:
    """One stream's plan and muxer. Feed speech pieces in order (`add_speech` -> chunk jobs), then the encoded
    chunks in order (`add_video` -> bytes to send), then `finish` (the last bytes)."""

    size: int
    fps: float
    video: VideoSettings
    motion: MotionConfig
    sample_rate: int | None = None  # of the first piece; later pieces are resampled to it
    chunk_frames: tuple[int, ...] = CHUNK_FRAMES  # from the start of each piece
    window_s: float | None = None  # history kept by the plan (a live session that runs for hours)
    plan: SpeechPlan = field(init=False)
    muxer: FragmentMuxer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.plan = SpeechPlan(self.fps, self.motion, self.sample_rate, self.window_s)

    def add_speech(self, piece: SpeechChunk) -> list[ChunkJob]:
        """Plan the frames this piece of speech covers; returns them as chunks to render and encode."""
        first = len(self.plan)
        audio, controls = self.plan.add(piece)
        if self.muxer is None:
            self.sample_rate = self.plan.sample_rate
            self.muxer = FragmentMuxer(self.size, self.size, self.fps, self.sample_rate, self.video.preset,
                                       self.video.crf, self.video.x264_params)  # fmt: skip
        self.muxer.add_audio(audio, self.sample_rate)
        return [] if controls is None else self._split(first, controls)

    def add_video(self, chunk: EncodedChunk) -> bytes:
        return self.muxer.add_video(chunk)

    def finish(self) -> bytes:
        if self.muxer is None:
            raise ValueError("the stream has no speech")
        return self.muxer.close()

    def abort(self) -> None:
        if self.muxer is not None:
            self.muxer.abort()

    @property
    def duration(self) -> float:
        return self.plan.duration

    def _split(self, first: int, controls: Controls) -> list[ChunkJob]:
        jobs, at = [], 0
        while at < len(controls):
            n = self.chunk_frames[min(len(jobs), len(self.chunk_frames) - 1)]
            n = len(controls) - at if len(controls) - at < n + n // 2 else n  # no tiny tail chunk
            jobs.append(ChunkJob(first + at, controls.slice(at, at + n)))
            at += n
        return jobs


def stream_local(
    live: LiveVideo,
    pieces: Iterable[SpeechChunk],
    encode: Callable[[ChunkJob], EncodedChunk],
    stats: StreamStats | None = None,
) -> Iterator[bytes]:
    """Drive one stream in this process: speech is synthesised ahead in a thread while chunks are rendered and
    encoded here; yields the init segment and fragments as they are ready."""
    stats = stats or StreamStats()
    t0 = time.perf_counter()
    ahead = Ahead(pieces)
    try:
        for piece in ahead:
            stats.tts_ms = ahead.busy_s * 1000
            stats.pieces += 1
            for job in live.add_speech(piece):
                data = live.add_video(encode(job))
                stats.n_frames += len(job.controls)
                if data:
                    if stats.first_fragment_ms is None and b"moof" in data:
                        stats.first_fragment_ms = (time.perf_counter() - t0) * 1000
                    yield data
        tail = live.finish()
    except BaseException:
        live.abort()
        raise
    stats.tts_ms = ahead.busy_s * 1000
    stats.audio_duration_s = live.duration
    stats.total_ms = (time.perf_counter() - t0) * 1000
    yield tail
