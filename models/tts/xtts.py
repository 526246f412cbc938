"""Coqui XTTS-v2 engine: 17 languages and voice cloning from a 3-30 s clip (coqui-tts).

Weights come from a folder (`model.pth`, `config.json`, `vocab.json`, optional `speakers_xtts.pth`), normally a
BentoML model-store entry filled by `scripts/import_models.py xtts`. Conditioning latents of each cloned voice
are computed once and cached in memory and on disk. It is the GPU engine: on a 2-core CPU it runs several
times slower than real time (see the docs).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.errors import EngineUnavailable, InvalidInput, NotFound, UnsupportedLanguage
from models.text import normalize_language, split_sentences
from models.tts.base import SpeechChunk, SynthesisOptions, VoiceInfo
from models.tts.voices import VoiceStore


def _patch_audio_loading() -> None:
    """coqui-tts reads reference clips with torchaudio.load (its compiled backend is not installed here):
    read them with soundfile + soxr instead, same output (1, n) float tensor at the requested rate."""
    import soundfile as sf
    import soxr
    import torch
    import TTS.tts.models.xtts as xtts_module

    def load_audio(path, sampling_rate):
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if sr != sampling_rate:
            audio = soxr.resample(audio, sr, sampling_rate)
        return torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None]

    xtts_module.load_audio = load_audio


class XttsEngine:
    name = "xtts"
    can_clone = True

    def __init__(self, model_dir: str | Path, voices_dir: str | Path, device: str = "cpu", half: bool | None = None):
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as exc:
            raise EngineUnavailable(f"the xtts engine needs coqui-tts (make setup installs it): {exc}") from exc
        model_dir = Path(model_dir)
        for name in ("model.pth", "config.json", "vocab.json"):
            if not (model_dir / name).is_file():
                raise EngineUnavailable(f"XTTS folder {model_dir} has no {name}")
        _patch_audio_loading()
        cfg = XttsConfig()
        cfg.load_json(str(model_dir / "config.json"))
        model = Xtts(cfg)
        model.load_checkpoint(cfg, checkpoint_dir=str(model_dir), eval=True, use_deepspeed=False)
        self.model = model.to(device)
        self.device = device
        # fp16 autocast on CUDA only: the GPT is stable in half precision there; MPS/CPU stay in fp32
        self.half = (device == "cuda") if half is None else half
        self.sample_rate = int(cfg.audio.output_sample_rate)
        self.languages = tuple(normalize_language(lang) for lang in cfg.languages)
        self.store = VoiceStore(voices_dir)
        self._latents: dict[str, tuple] = {}
        self._lock = threading.Lock()  # one generation at a time per model (the GPT keeps state per call)
        self._torch = torch
        self.cache_hits = 0

    # voices -------------------------------------------------------------------------------------------
    def voices(self) -> list[VoiceInfo]:
        builtin = list(getattr(getattr(self.model, "speaker_manager", None), "speakers", {}) or {})
        out = [VoiceInfo(v["id"], self.name, self.languages, cloned=True) for v in self.store.list()]
        return out + [VoiceInfo(s, self.name, self.languages) for s in builtin]

    def add_voice(self, name: str | None, clip: bytes) -> dict:
        record = self.store.add(name, clip, self.name, self.languages)
        self.latents(record["id"])  # computed and cached now, so the first request is fast
        return record

    def delete_voice(self, voice_id: str) -> None:
        self.store.delete(voice_id)
        self._latents.pop(voice_id, None)

    def latents(self, voice_id: str) -> tuple:
        """(gpt_cond_latent, speaker_embedding) of a voice: memory, then disk, then computed from the clip."""
        if voice_id in self._latents:
            self.cache_hits += 1
            return self._latents[voice_id]
        builtin = getattr(getattr(self.model, "speaker_manager", None), "speakers", None) or {}
        if voice_id in builtin:
            lat = tuple(builtin[voice_id].values())
        else:
            clip = self.store.clip(voice_id)
            cache = clip.with_suffix(".latents.pt")
            if cache.exists():
                lat = tuple(self._torch.load(cache, map_location=self.device))
            else:
                with self._lock:
                    lat = tuple(self.model.get_conditioning_latents(audio_path=[str(clip)]))
                self._torch.save([t.cpu() for t in lat], cache)
        self._latents[voice_id] = tuple(t.to(self.device) for t in lat)
        return self._latents[voice_id]

    # synthesis ----------------------------------------------------------------------------------------
    def _voice_id(self, voice: str | None) -> str:
        if voice in (None, "", "default"):
            voices = self.voices()
            if not voices:
                raise InvalidInput(
                    "XTTS needs a voice: upload a reference clip first (POST /api/v1/voices)", field="voice"
                )
            return voices[0].id
        if voice not in {v.id for v in self.voices()}:
            raise NotFound(f"unknown voice {voice!r}", allowed=[v.id for v in self.voices()], field="voice")
        return voice

    def _check_language(self, language: str) -> str:
        lang = normalize_language(language)
        if lang not in self.languages:
            raise UnsupportedLanguage(
                f"XTTS does not speak {language!r}", allowed=list(self.languages), field="language"
            )
        return lang

    def _autocast(self):
        if self.half:
            return self._torch.autocast("cuda", dtype=self._torch.float16)
        return contextlib.nullcontext()

    def synthesize_stream(self, text: str, language: str = "en", voice: str | None = None,
                          options: SynthesisOptions | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
        lang = self._check_language(language)
        gpt, spk = self.latents(self._voice_id(voice))
        opts = options or SynthesisOptions()
        for sentence in split_sentences(text):
            with self._lock, self._torch.inference_mode(), self._autocast():
                out = self.model.inference(sentence, lang, gpt, spk, speed=opts.speed)
            wav = np.asarray(out["wav"], np.float32) * opts.volume
            yield SpeechChunk(np.clip(wav, -1, 1), self.sample_rate, sentence, None)

    def stream_audio(self, text: str, language: str = "en", voice: str | None = None,
                     options: SynthesisOptions | None = None, chunk_tokens: int = 20,
                     ) -> Iterator[np.ndarray]:  # fmt: skip
        """Audio as it is generated (XTTS `inference_stream`): first sound long before the sentence is done."""
        lang = self._check_language(language)
        gpt, spk = self.latents(self._voice_id(voice))
        opts = options or SynthesisOptions()
        for sentence in split_sentences(text):
            # the lock is held while the consumer reads: one stream at a time per model
            with self._lock, self._torch.inference_mode(), self._autocast():
                for part in self.model.inference_stream(
                    sentence, lang, gpt, spk, stream_chunk_size=chunk_tokens, speed=opts.speed
                ):
                    yield np.clip(part.float().cpu().numpy() * opts.volume, -1, 1).astype(np.float32)
