"""The default renderer: animates one photo by warping it (no neural network, no downloads)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.avatar.base import SpeechTrack
from models.avatar.controls import Controls, MotionConfig, Segment, build_controls
from models.avatar.geometry import Portrait, prepare
from models.avatar.landmarks import cached_landmarks, image_hash
from models.avatar.warp import MapBuilder, Pose, paint_mouth
from models.errors import InvalidInput
from models.media.audio import rms_envelope

SIZES = (128, 1024)  # allowed output sizes (inclusive range, even numbers)
FPS = (10, 60)


@dataclass
class Avatar:
    """A registered portrait at one output size, with its reusable sampling grids."""

    key: str
    portrait: Portrait
    builder: MapBuilder


def check_video_options(size: int, fps: float) -> None:
    if not (SIZES[0] <= size <= SIZES[1]) or size % 2:
        raise InvalidInput(f"size {size} is not allowed", allowed=f"even numbers {SIZES[0]}-{SIZES[1]}", field="size")
    if not (FPS[0] <= fps <= FPS[1]):
        raise InvalidInput(f"fps {fps} is not allowed", allowed=f"{FPS[0]}-{FPS[1]}", field="fps")


class PortraitRenderer:
    """Procedural portrait animator.

    backend: "cv2" (OpenCV remap per frame; fastest on CPU), "torch" (one batched grid_sample per chunk of
    frames on `device`; the choice for CUDA/MPS), or "auto" (torch on a GPU, else cv2).
    """

    name = "portrait"

    def __init__(
        self,
        size: int = 512,
        fps: float = 25,
        backend: str = "auto",
        device: str = "cpu",
        motion: MotionConfig | None = None,
        cache_dir: str | Path | None = None,
        max_avatars: int = 32,
        threads: int = 1,
    ):
        check_video_options(size, fps)
        if backend not in ("auto", "cv2", "torch"):
            raise InvalidInput(f"unknown backend {backend!r}", allowed=["auto", "cv2", "torch"], field="backend")
        self.size, self.fps, self.device = size, fps, device
        self.backend = ("torch" if device != "cpu" else "cv2") if backend == "auto" else backend
        self.motion = motion or MotionConfig()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._avatars: OrderedDict[str, Avatar] = OrderedDict()
        self._max_avatars = max_avatars
        self._lock = threading.Lock()
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        # OpenCV's own worker threads cost more than they give on these small images (measured: a frame took 5.0
        # ms with them, 3.2 without); our threads are the parallelism. Process-wide, set where OpenCV is used.
        cv2.setNumThreads(0)

    def prepare(self, image: np.ndarray) -> Avatar:
        """Find the face once (landmarks cached on disk by image hash), crop and measure; memoised in memory."""
        key = f"{image_hash(image)}-{self.size}"
        with self._lock:
            if key in self._avatars:
                self._avatars.move_to_end(key)
                return self._avatars[key]
        points = cached_landmarks(image, self.cache_dir / "landmarks" if self.cache_dir else None)
        portrait = prepare(image, points, self.size)
        avatar = Avatar(key, portrait, MapBuilder(portrait))
        with self._lock:
            self._avatars[key] = avatar
            while len(self._avatars) > self._max_avatars:
                self._avatars.popitem(last=False)
        return avatar

    def plan(self, avatar: Avatar, speech: SpeechTrack, seed: int = 0) -> Controls:
        n_frames = max(1, int(round(speech.duration * self.fps)))
        envelope = rms_envelope(speech.audio, speech.sample_rate, self.fps, n_frames)
        segments = [Segment(*p) for p in speech.phonemes] if speech.phonemes else None
        motion = MotionConfig(**{**self.motion.__dict__, "seed": seed})
        return build_controls(n_frames, self.fps, envelope, segments, motion)  # lips closed in silence

    def frames(self, avatar: Avatar, plan: Controls, chunk: int = 25) -> Iterator[np.ndarray]:
        for start in range(0, len(plan), chunk):
            yield from self.render_batch([(avatar, plan, range(start, min(start + chunk, len(plan))))])[0]

    def render_batch(
        self, jobs: Sequence[tuple[Avatar, Controls, range | None]], threads: int | None = None
    ) -> list[np.ndarray]:
        """Frames of several requests together: one (n_i, S, S, 3) array per job (indices None = all frames).

        torch: all frames in shared grid_sample calls on the device; cv2: frames spread over a thread pool
        (OpenCV and numpy release the GIL) of `threads` (None: the renderer's own setting).
        """
        spans = [idx if idx is not None else range(len(plan)) for _, plan, idx in jobs]
        work = [(j, k, i) for j, span in enumerate(spans) for k, i in enumerate(span)]
        if self.backend == "torch":
            from models.avatar.torch_backend import render_torch

            frames = iter(render_torch([(jobs[j][0], jobs[j][1].pose(i)) for j, _, i in work], self.device))
            return [np.stack([next(frames) for _ in span]) if span else self._empty(0) for span in spans]
        # each frame is drawn straight into its place in the batch: a copy per frame and np.stack (a second copy
        # of the whole batch) are what this saves (docs, Benchmark, "Fourth round")
        batch = [self._empty(len(span)) for span in spans]

        def draw(w: tuple[int, int, int]) -> None:
            j, k, i = w
            self._render_one(jobs[j][0], jobs[j][1].pose(i), batch[j][k])

        if (self.threads if threads is None else threads) > 1 and len(work) > 1:
            list(self._pool().map(draw, work))
        else:
            for w in work:
                draw(w)
        return batch

    def _empty(self, n: int) -> np.ndarray:
        return np.empty((n, self.size, self.size, 3), np.uint8)

    def _render_one(self, avatar: Avatar, pose: Pose, frame: np.ndarray) -> None:
        """One frame drawn into `frame` (S, S, 3): the still photo, its head region warped, the mouth painted."""
        p = avatar.portrait
        x0, y0, x1, y1 = p.head_box
        mx, my, paint = avatar.builder.build(pose)
        frame[:] = p.image
        cv2.remap(p.image, mx, my, cv2.INTER_LINEAR, frame[y0:y1, x0:x1], borderMode=cv2.BORDER_REFLECT)
        paint_mouth(frame, paint, p.palette)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="render")
            return self._executor


def speech_track(audio: np.ndarray, sample_rate: int, phonemes) -> SpeechTrack:
    """Adapter from TTS phonemes (objects with symbol/start/duration) to the renderer's input."""
    tuples = [(p.symbol, p.start, p.duration) for p in phonemes] if phonemes else None
    return SpeechTrack(audio, sample_rate, tuples)
