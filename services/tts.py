"""TTSService: speech for a batch of texts (adaptive batching), audio + phoneme timings back; and speech
recognition (Whisper, when its weights are imported): the service that holds the speech models and their GPU. The
work is services/runner_speech.py's, which the Triton model (services_triton/) serves too; this adds BentoML's
endpoints and batching."""

from __future__ import annotations

import bentoml

from models.settings import load_settings
from services.runner_speech import SpeechRunner
from services.schemas import AlignRequest, SynthesisRequest, SynthesisResult
from services.traffic import install as install_timeout

SERVING = load_settings().serving
install_timeout()  # BentoML's timeout and metrics, without memory kept per request or path (services/traffic.py)


@bentoml.service(name="tts", traffic={"timeout": SERVING.timeout_s}, workers=1)
class TTSService(SpeechRunner):
    @bentoml.api(batchable=True, max_batch_size=SERVING.tts_max_batch_size, max_latency_ms=SERVING.tts_max_latency_ms)
    def synthesize(self, requests: list[SynthesisRequest]) -> list[SynthesisResult]:
        """Adaptive batch: the items run in parallel threads (a padded ONNX batch is not faster on a CPU)."""
        return super().synthesize(requests)

    @bentoml.api
    def synthesize_one(self, request: SynthesisRequest) -> SynthesisResult:
        """The same without batching (used when serving.batching is off)."""
        return self._one(request)

    @bentoml.api
    def voices(self) -> list[dict]:
        return super().voices()

    @bentoml.api
    def add_voice(self, clip: str, name: str | None = None) -> dict:
        """Clone a voice from a reference clip (base64 audio bytes); its conditioning latents are cached."""
        return super().add_voice(clip, name)

    @bentoml.api
    def delete_voice(self, voice_id: str) -> dict:
        return super().delete_voice(voice_id)

    @bentoml.api
    def info(self) -> dict:
        return super().info()

    @bentoml.api
    def transcribe(self, audio: str, language: str | None = None, candidates: list[str] | None = None) -> dict:
        """Text and language of a clip (base64 of an encoded file); `candidates` bounds language detection."""
        return super().transcribe(audio, language, candidates)

    @bentoml.api
    def align(self, request: AlignRequest) -> dict:
        """Timed phonemes of a piece of speech from elsewhere (an upload, a client's TTS): forced alignment with
        its text, recognition without (models/align)."""
        return super().align(request)

    @bentoml.api
    def vad(self, audio: str, state: dict | None = None) -> dict:
        """Silero VAD for a live microphone stream: speech probabilities of 16 kHz audio (base64 int16 PCM) in
        32 ms windows, and the stream's next state (the caller keeps it: this service holds none per stream)."""
        return super().vad(audio, state)
