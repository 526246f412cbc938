"""Speech as it arrives, piece by piece (a sentence, or a first clause): synthesised ahead in a thread (`Ahead`)
and turned into the face plan that grows with it (`SpeechPlan`). Both video paths are built on these: the stream
(`models/stream.py`) and the whole MP4 (`models/render_mp4.py`), which renders sentence k while sentence k+1 is
synthesised.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from models.avatar.controls import Controls, ControlStream, MotionConfig, Segment
from models.media.audio import resample, rms_envelope
from models.tts.base import SpeechChunk


class Ahead:
    """The pieces of `pieces`, produced by a background thread up to `depth` ahead; its errors are re-raised in
    order by the consumer. `busy_s` is the producer's own time (the TTS stage's), however it overlapped."""

    def __init__(self, pieces: Iterable[SpeechChunk], depth: int = 4):
        self.pieces, self.depth = pieces, depth
        self.busy_s = 0.0

    def __iter__(self) -> Iterator[SpeechChunk]:
        q: queue.Queue = queue.Queue(self.depth)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            it = iter(self.pieces)
            try:
                while not stop.is_set():
                    t = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        break
                    self.busy_s += time.perf_counter() - t
                    q.put(item)
                q.put(done)
            except BaseException as exc:  # noqa: BLE001  (handed to the consumer, which re-raises it)
                q.put(exc)

        thread = threading.Thread(target=produce, name="tts-ahead", daemon=True)
        thread.start()
        try:
            while (item := q.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(0.05)


@dataclass
class SpeechPlan:
    """The face plan of speech that arrives piece by piece, with the audio so far at one sample rate (the first
    piece's; later pieces are resampled to it). Frames already planned never change (`ControlStream`)."""

    fps: float
    motion: MotionConfig
    sample_rate: int | None = None
    window_s: float | None = None  # keep only this much history (a live session): ControlStream's window
    controls: ControlStream = field(init=False)
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), init=False)
    dropped: int = field(default=0, init=False)  # samples forgotten before `audio` (window_s)

    def __post_init__(self) -> None:
        self.controls = ControlStream(self.fps, self.motion, window_s=self.window_s)

    def __len__(self) -> int:
        return len(self.controls)

    def add(self, piece: SpeechChunk) -> tuple[np.ndarray, Controls | None]:
        """The piece's audio (at `sample_rate`) and the controls of the frames it adds, which start at frame
        `len(self)` as it was before the call (None when the piece is shorter than what is left of a frame)."""
        self.sample_rate = self.sample_rate or piece.sample_rate
        audio = resample(piece.audio.astype(np.float32, copy=False), piece.sample_rate, self.sample_rate)
        offset = self.samples / self.sample_rate
        self.audio = np.concatenate([self.audio, audio])
        first, end = len(self.controls), int(round(self.samples / self.sample_rate * self.fps))
        if end <= first:
            return audio, None
        envelope = rms_envelope(self.audio, self.sample_rate, self.fps, end, self.dropped)[first:]
        self._forget(first)
        # phoneme times follow the resampled audio (the same seconds, up to the rounding of its length)
        scale = (len(audio) / self.sample_rate) / max(len(piece.audio) / piece.sample_rate, 1e-9)
        segments = None
        if piece.phonemes is not None:
            segments = [Segment(p.symbol, offset + p.start * scale, p.duration * scale) for p in piece.phonemes]
        return audio, self.controls.extend(envelope, segments)

    @property
    def samples(self) -> int:
        return self.dropped + len(self.audio)

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0

    def _forget(self, frame: int) -> None:
        """With a window, drop the audio more than a window before `frame` (in steps of a window)."""
        if self.window_s is None:
            return
        keep = int(max(frame / self.fps - self.window_s, 0) * self.sample_rate)
        if keep - self.dropped > self.window_s * self.sample_rate:
            self.audio = self.audio[keep - self.dropped :]
            self.dropped = keep
