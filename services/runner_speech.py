"""The speech unit's work, shared by its BentoML service (services/tts.py) and its Triton model
(services_triton/): speech for a batch of texts, audio + phoneme timings back; speech recognition (Whisper, when
its weights are imported), alignment and voice activity. No BentoML here."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from models.settings import load_settings
from services.common import capture, workers
from services.schemas import AlignRequest, SynthesisRequest, SynthesisResult, pack_audio, unpack_audio


def _error(failure) -> dict:
    return {"error": failure.model_dump()}


class SpeechRunner:
    """The speech unit's work behind either adapter: speech for a batch of texts, audio + phoneme timings back;
    recognition, alignment, voice activity; voices."""

    def __init__(self) -> None:
        from models.align import AudioAligner, with_alignment
        from models.device import resolve_device
        from models.settings import tts_engine_kwargs
        from models.tts import create_engine

        s = load_settings()
        self.device = resolve_device(s.device)
        self.asr, self.asr_error = _load_asr(s, self.device)
        self.aligner = AudioAligner(transcriber=self.asr)  # audio -> timed phonemes (audio in, XTTS's own text)
        self.aligner.warm()
        self.engine = with_alignment(create_engine(s.tts.engine, **tts_engine_kwargs(s, self.device)), self.aligner)
        self.max_chars = s.tts.max_chars
        self.noise = {"noise_scale": s.tts.noise_scale, "noise_w_scale": s.tts.noise_w_scale}
        # one onnxruntime session is thread-safe; a batch is spread over one thread per core
        self.pool = ThreadPoolExecutor(workers(), thread_name_prefix="tts")
        self._vad = None  # Silero VAD, loaded by the first live stream

    def synthesize(self, requests: list[SynthesisRequest]) -> list[SynthesisResult]:
        """Adaptive batch: the items run in parallel threads (a padded ONNX batch is not faster on a CPU)."""
        return list(self.pool.map(self._one, requests))

    def voices(self) -> list[dict]:
        return [v.as_dict() for v in self.engine.voices()]

    def add_voice(self, clip: str, name: str | None = None) -> dict:
        """Clone a voice from a reference clip (base64 audio bytes); its conditioning latents are cached."""
        import base64

        from models.tts.base import clone_voice

        return capture(lambda: {"voice": clone_voice(self.engine, name, base64.b64decode(clip))}, _error)

    def delete_voice(self, voice_id: str) -> dict:
        from models.tts.base import remove_voice

        return capture(lambda: remove_voice(self.engine, voice_id) or {"deleted": voice_id}, _error)

    def info(self) -> dict:
        asr = {"engine": self.asr.name, "languages": len(self.asr.languages)} if self.asr else self.asr_error
        return {"engine": self.engine.name, "device": self.device, "sample_rate": self.engine.sample_rate, "asr": asr}

    def transcribe(self, audio: str, language: str | None = None, candidates: list[str] | None = None) -> dict:
        """Text and language of a clip (base64 of an encoded file); `candidates` bounds language detection."""
        import base64

        from models.errors import EngineUnavailable

        def run() -> dict:
            if self.asr is None:
                raise EngineUnavailable(self.asr_error)
            return {"transcript": self.asr.transcribe(base64.b64decode(audio), None, language, candidates).as_dict()}

        return capture(run, _error)

    def align(self, request: AlignRequest) -> dict:
        """Timed phonemes of a piece of speech from elsewhere (an upload, a client's TTS): forced alignment with
        its text, recognition without (models/align)."""

        def run() -> dict:
            found = self.aligner.align(unpack_audio(request.audio), request.sample_rate, request.text,
                                       request.language, live=request.live)  # fmt: skip
            phonemes = [(p.symbol, round(p.start, 4), round(p.duration, 4)) for p in found.phonemes]
            return {"phonemes": phonemes, "text": found.text, **found.as_dict()}

        return capture(run, _error)

    def vad(self, audio: str, state: dict | None = None) -> dict:
        """Silero VAD for a live microphone stream: speech probabilities of 16 kHz audio (base64 int16 PCM) in
        32 ms windows, and the stream's next state (the caller keeps it: this service holds none per stream)."""

        def run() -> dict:
            from models.live.vad import SileroVad, VadState

            if self._vad is None:
                self._vad = SileroVad()
            probs, after = self._vad.probabilities(unpack_audio(audio), VadState.from_dict(state))
            return {"probs": [round(float(p), 4) for p in probs], "state": after.as_dict()}

        return capture(run, _error)

    def _one(self, req: SynthesisRequest) -> SynthesisResult:
        def run() -> SynthesisResult:
            from models.text import normalize_language, normalize_text
            from models.tts import SynthesisOptions, synthesize

            t = time.perf_counter()
            text = normalize_text(req.text, self.max_chars)
            voice = None if req.voice in (None, "", "default") else req.voice
            options = SynthesisOptions(req.speed, urgent=req.urgent, **self.noise)
            speech = synthesize(self.engine, text, normalize_language(req.language), voice, options)
            phonemes = [(p.symbol, p.start, p.duration) for p in speech.phonemes] if speech.phonemes else None
            ms = (time.perf_counter() - t) * 1000
            return SynthesisResult(audio=pack_audio(speech.audio), sample_rate=speech.sample_rate, phonemes=phonemes,
                                   tts_ms=ms, mouth=speech.mouth)  # fmt: skip

        return capture(run, lambda f: SynthesisResult(error=f))


def _load_asr(settings, device: str):
    """The recogniser, or None and why (weights not imported: say how); never fails the service."""
    from models.asr import load_transcriber
    from models.errors import EngineUnavailable

    try:
        return load_transcriber(settings, device), None
    except EngineUnavailable as exc:
        return None, str(exc)
