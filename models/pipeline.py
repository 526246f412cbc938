"""text -> speech -> frames -> MP4, with per-stage timings. Used by the CLI, the benchmark and the services.

The steps are named functions; `Pipeline.generate` only strings them together. Rendering and x264 run in
two threads joined by a small queue (OpenCV, numpy and the encoder release the GIL), so on two cores the
encode overlaps the rendering; each stage's own busy time is still reported separately.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.avatar.base import create_renderer
from models.avatar.images import load_image
from models.avatar.portrait import Avatar, PortraitRenderer, speech_track
from models.device import resolve_device
from models.media import Mp4Writer
from models.settings import Settings, load_settings
from models.text import normalize_language, normalize_text
from models.tts import SynthesisOptions, create_engine, synthesize
from models.tts.base import Speech

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Timings:
    tts_ms: float
    avatar_ms: float
    encode_ms: float
    total_ms: float
    audio_duration_s: float
    rtf: float
    n_frames: int

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class Result:
    path: Path
    timings: Timings
    speech: Speech


def default_image(settings: Settings) -> np.ndarray:
    """The configured portrait, or the bundled public-domain one."""
    if settings.avatar.image:
        return load_image(settings.avatar.image)
    from importlib import resources

    return load_image((resources.files("assets") / "astronaut.png").read_bytes())


class Pipeline:
    """Holds the loaded engines; `generate` is safe to call from several threads."""

    def __init__(self, settings: Settings | None = None, tts=None, renderer=None):
        self.settings = settings or load_settings()
        s = self.settings
        self.device = resolve_device(s.device)
        self.tts = tts or create_engine(s.tts.engine, **_tts_kwargs(s))
        self.renderer: PortraitRenderer = renderer or create_renderer(
            s.avatar.renderer,
            size=s.avatar.size,
            fps=s.avatar.fps,
            backend=s.avatar.backend,
            device=self.device,
            cache_dir=s.storage.root,
        )
        self._renderers = {(self.renderer.size, self.renderer.fps): self.renderer}
        self._default_avatar: Avatar | None = None

    def renderer_for(self, size: int | None, fps: float | None) -> PortraitRenderer:
        """A renderer at another size/fps shares the settings (and the on-disk landmark cache)."""
        key = (size or self.renderer.size, fps or self.renderer.fps)
        if key not in self._renderers:
            r = self.renderer
            self._renderers[key] = PortraitRenderer(key[0], key[1], r.backend, r.device, r.motion, r.cache_dir)
        return self._renderers[key]

    def avatar(self, image: np.ndarray | None = None, renderer: PortraitRenderer | None = None) -> Avatar:
        renderer = renderer or self.renderer
        return renderer.prepare(default_image(self.settings) if image is None else image)

    def speak(self, text: str, language: str = "en", voice: str | None = None, options=None) -> Speech:
        text = normalize_text(text, self.settings.tts.max_chars)
        return synthesize(self.tts, text, normalize_language(language), voice, options or SynthesisOptions())

    def generate(
        self,
        text: str,
        out_path: str | Path,
        language: str = "en",
        image: np.ndarray | None = None,
        voice: str | None = None,
        options: SynthesisOptions | None = None,
        size: int | None = None,
        fps: float | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> Result:
        t0 = time.perf_counter()
        renderer = self.renderer_for(size, fps)
        avatar = self.avatar(image, renderer)  # before TTS: a bad photo fails fast
        speech = self.speak(text, language, voice, options)
        t_tts = time.perf_counter() - t0
        track = speech_track(speech.audio, speech.sample_rate, speech.phonemes)
        t1 = time.perf_counter()
        plan = renderer.plan(avatar, track, seed=seed)
        plan_s = time.perf_counter() - t1
        render_s, encode_s = encode_video(
            renderer.frames(avatar, plan), len(plan), out_path, renderer, speech, self.settings, progress
        )
        total = time.perf_counter() - t0
        timings = Timings(
            tts_ms=t_tts * 1000,
            avatar_ms=(plan_s + render_s) * 1000,
            encode_ms=encode_s * 1000,
            total_ms=total * 1000,
            audio_duration_s=speech.duration,
            rtf=total / max(speech.duration, 1e-6),
            n_frames=len(plan),
        )
        return Result(Path(out_path), timings, speech)


def _tts_kwargs(s: Settings) -> dict:
    if s.tts.engine == "piper":
        return {"model_path": s.tts.voice_path, "intra_op_threads": s.tts.intra_op_threads}
    return {}


def encode_video(
    frames: Iterable[np.ndarray],
    n_frames: int,
    out_path: str | Path,
    renderer: PortraitRenderer,
    speech: Speech,
    settings: Settings,
    progress: Progress | None = None,
) -> tuple[float, float]:
    """Render (this thread) and encode (a worker thread) concurrently; returns each side's busy seconds."""
    q: queue.Queue = queue.Queue(maxsize=16)
    busy = {"encode": 0.0}
    error: list[BaseException] = []
    size = renderer.size

    def consume(writer: Mp4Writer) -> None:
        try:
            while (frame := q.get()) is not None:
                t = time.perf_counter()
                writer.write_frames([frame])
                busy["encode"] += time.perf_counter() - t
        except BaseException as exc:  # re-raised in the caller's thread below
            error.append(exc)
            while q.get() is not None:  # drain so the producer never blocks
                pass

    video = settings.video
    with Mp4Writer(out_path, size, size, renderer.fps, speech.sample_rate, preset=video.preset, crf=video.crf) as w:
        t = time.perf_counter()
        w.write_audio(speech.audio, speech.sample_rate)
        busy["encode"] += time.perf_counter() - t
        worker = threading.Thread(target=consume, args=(w,), daemon=True)
        worker.start()
        render_s = _produce(frames, q, n_frames, progress, error)
        worker.join()
        if error:
            raise error[0]
        t = time.perf_counter()
    busy["encode"] += time.perf_counter() - t  # closing flushes the encoder
    return render_s, busy["encode"]


def _produce(frames: Iterable[np.ndarray], q: queue.Queue, n: int, progress: Progress | None, error: list) -> float:
    busy = 0.0
    it = iter(frames)
    try:
        for i in range(n):
            t = time.perf_counter()
            frame = next(it)
            busy += time.perf_counter() - t
            if error:
                break
            q.put(frame)
            if progress and (i % 25 == 0 or i == n - 1):
                progress("render", i + 1, n)
    finally:
        q.put(None)
    return busy
