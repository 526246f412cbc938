"""text -> speech -> frames -> MP4, with per-stage timings. Used by the CLI, the benchmark and the services.

The steps are named functions; `Pipeline.generate` only strings them together. Rendering and x264 run in
different threads (OpenCV, numpy and the encoder release the GIL), so on two cores the encode overlaps the
rendering; each stage's own busy time is still reported separately.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.align import AudioAligner, with_alignment
from models.animate import speech_pieces
from models.avatar.controls import MotionConfig
from models.avatar.images import load_image
from models.avatar.portrait import Avatar, PortraitRenderer, check_video_options
from models.avatar.registry import create_renderer
from models.device import resolve_device
from models.media.fragments import encode_chunk
from models.render_mp4 import Progress, SpokenJob, render_as_spoken
from models.settings import Settings, VideoSettings, load_settings, tts_engine_kwargs
from models.stream import ChunkJob, LiveVideo, StreamStats, stream_local
from models.text import normalize_language, normalize_text, split_sentences, stream_pieces
from models.tts import SynthesisOptions, create_engine, synthesize
from models.tts.base import Speech


@dataclass
class Timings:
    tts_ms: float
    avatar_ms: float
    encode_ms: float
    total_ms: float
    audio_duration_s: float
    rtf: float
    n_frames: int
    mouth: str = "phonemes"  # where the mouth's timings came from (models/tts/base.py MOUTH_SOURCES)
    align_ms: float = 0.0  # audio in: finding them in the audio (models/align)

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
        self.aligner = AudioAligner()  # its decoders load on first use
        self.tts = with_alignment(tts or create_engine(s.tts.engine, **tts_engine_kwargs(s, self.device)), self.aligner)
        self.renderer: PortraitRenderer = renderer or create_renderer(
            s.avatar.renderer,
            size=s.avatar.size,
            fps=s.avatar.fps,
            backend=s.avatar.backend,
            device=self.device,
            cache_dir=s.storage.root,
            threads=s.avatar.render_threads,
        )
        self._renderers = {(self.renderer.size, self.renderer.fps): self.renderer}
        self._default_image: np.ndarray | None = None  # decoded once, on first use

    def renderer_for(self, size: int | None, fps: float | None) -> PortraitRenderer:
        """A renderer at another size/fps shares the settings (and the on-disk landmark cache)."""
        key = (self.renderer.size if size is None else size, self.renderer.fps if fps is None else fps)
        check_video_options(*key)
        if key not in self._renderers:
            r = self.renderer
            self._renderers[key] = PortraitRenderer(
                key[0], key[1], r.backend, r.device, r.motion, r.cache_dir, threads=r.threads
            )
        return self._renderers[key]

    def avatar(self, image: np.ndarray | None = None, renderer: PortraitRenderer | None = None) -> Avatar:
        renderer = renderer or self.renderer
        if image is None:
            if self._default_image is None:
                self._default_image = default_image(self.settings)
            image = self._default_image
        return renderer.prepare(image)

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
        text = normalize_text(text, self.settings.tts.max_chars)
        options = options or SynthesisOptions()
        pieces = self._speech(split_sentences(text) or [text], normalize_language(language), voice, options)
        motion = MotionConfig(**{**renderer.motion.__dict__, "seed": seed})
        job = SpokenJob(avatar, motion, Path(out_path))
        speech, stage = render_as_spoken(renderer, job, pieces, self.settings.video, progress=progress)
        return Result(Path(out_path), _timings(t0, speech, stage, tts_s=stage.tts_s), speech)

    def animate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        out_path: str | Path,
        text: str | None = None,
        language: str = "en",
        image: np.ndarray | None = None,
        size: int | None = None,
        fps: float | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> Result:
        """Audio in (a recording, another TTS's speech) -> the talking MP4: its timed phonemes come from the audio
        (and `text`, when known), then it is rendered as `generate` renders speech. Bad input (language, text in
        another script, photo, size, fps) raises before anything is made."""
        t0 = time.perf_counter()
        renderer = self.renderer_for(size, fps)
        avatar = self.avatar(image, renderer)
        text = normalize_text(text, self.settings.tts.max_chars) if text and text.strip() else None
        language = self.aligner.check(text, language)
        pieces = speech_pieces(self.aligner, audio, sample_rate, text, language)
        job = SpokenJob(avatar, MotionConfig(**{**renderer.motion.__dict__, "seed": seed}), Path(out_path))
        speech, stage = render_as_spoken(renderer, job, pieces, self.settings.video, progress=progress)
        return Result(Path(out_path), _timings(t0, speech, stage, align_s=stage.tts_s), speech)

    def _speech(self, pieces: list[str], language: str, voice: str | None, options: SynthesisOptions):
        """The speech of each piece in order, synthesised as it is asked for (in the speech thread). The first
        piece is made with every core (`urgent`: nothing renders yet), the rest beside the rendering. Bad input
        (language, voice) raises here, before anything is made."""
        first, *rest = pieces
        head = self.tts.synthesize_stream(first, language, voice, dataclasses.replace(options, urgent=True))
        later = (self.tts.synthesize_stream(p, language, voice, options) for p in rest)  # lazily
        return itertools.chain(head, itertools.chain.from_iterable(later))

    def stream(
        self,
        text: str,
        language: str = "en",
        image: np.ndarray | None = None,
        voice: str | None = None,
        options: SynthesisOptions | None = None,
        size: int | None = None,
        fps: float | None = None,
        seed: int = 0,
        stats: StreamStats | None = None,
    ) -> Iterator[bytes]:
        """The talking video as a fragmented MP4 while it is made: the init segment, then a fragment per chunk.

        Bad input (text, language, voice, photo, size, fps) raises here, before anything is produced; a failure
        later raises from the iterator. `stats` (optional) is filled in as the stream runs.
        """
        renderer = self.renderer_for(size, fps)
        avatar = self.avatar(image, renderer)
        text = normalize_text(text, self.settings.tts.max_chars)
        language, options = normalize_language(language), options or SynthesisOptions()
        stats = stats if stats is not None else StreamStats()
        pieces = self._speech(stream_pieces(text), language, voice, options)
        motion = MotionConfig(**{**renderer.motion.__dict__, "seed": seed})
        live = LiveVideo(renderer.size, renderer.fps, self.settings.video, motion)
        return stream_local(live, pieces, functools.partial(_encode_job, renderer, avatar, self.settings.video, stats),
                            stats)  # fmt: skip


def _timings(t0: float, speech: Speech, stage, tts_s: float = 0.0, align_s: float = 0.0) -> Timings:
    total = time.perf_counter() - t0
    return Timings(
        tts_ms=tts_s * 1000,
        avatar_ms=(stage.plan_s + stage.render_s) * 1000,
        encode_ms=stage.encode_s * 1000,
        total_ms=total * 1000,
        audio_duration_s=speech.duration,
        rtf=total / max(speech.duration, 1e-6),
        n_frames=stage.n_frames,
        mouth=speech.mouth,
        align_ms=align_s * 1000,
    )


def _encode_job(renderer: PortraitRenderer, avatar: Avatar, video: VideoSettings, stats: StreamStats, job: ChunkJob):
    """Render and encode one chunk of a stream in this process."""
    t = time.perf_counter()
    (frames,) = renderer.render_batch([(avatar, job.controls, None)])
    t1 = time.perf_counter()
    chunk = encode_chunk(frames, job.start, renderer.fps, video.preset, video.crf, threads=0, params=video.x264_params)
    stats.render_ms += (t1 - t) * 1000
    stats.encode_ms += (time.perf_counter() - t1) * 1000
    return chunk
