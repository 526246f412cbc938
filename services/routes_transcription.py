"""OpenAI-compatible speech to text, `POST /v1/audio/transcriptions`, on the Whisper the project already serves
(TTSService.transcribe): OpenAI's multipart fields and response formats, errors in OpenAI's shape (the
middleware of services/openai_errors.py), so every OpenAI STT client works against it (the official SDK,
Pipecat's OpenAISTTService)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from models.errors import InvalidInput
from services.app import UPLOAD
from services.backends import Service, read_upload
from services.openai_errors import OpenAIError
from services.schemas import LANGUAGE_PATTERN, error_responses

router = APIRouter()
FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
# Whisper's names for the languages, as OpenAI's verbose_json reports them (others: the code itself)
NAMES = {"en": "english", "es": "spanish", "zh-cn": "chinese", "fr": "french", "de": "german", "it": "italian",
         "pt": "portuguese", "ja": "japanese", "ko": "korean", "ru": "russian", "ar": "arabic", "hi": "hindi",
         "nl": "dutch", "pl": "polish", "tr": "turkish", "cs": "czech", "hu": "hungarian"}  # fmt: skip
RESPONSES = {
    200: {"content": {"application/json": {}, "text/plain": {}}, "description": "json: {text}; verbose_json: "
          "{task, language, duration, text, segments}; text, srt, vtt: plain text"},
} | error_responses(400, 413, 502, 503, model=OpenAIError)  # fmt: skip


@router.post("/v1/audio/transcriptions", tags=["speech"], response_class=JSONResponse, responses=RESPONSES)
async def transcriptions(
    svc: Service,
    file: UploadFile = File(description="the audio: wav, mp3, ogg, flac, m4a, webm...", **UPLOAD),
    model: str = Form("whisper-1", max_length=64, description="accepted for compatibility: the imported Whisper"),
    language: str | None = Form(None, pattern=LANGUAGE_PATTERN, max_length=12, description="ISO-639-1; none: detected"),
    prompt: str | None = Form(None, max_length=4096, description="accepted for compatibility, not used"),
    response_format: str = Form("json", description=f"one of {', '.join(FORMATS)}"),
    temperature: float = Form(0.0, ge=0, le=1, description="accepted for compatibility (decoding is greedy)"),
) -> Response:
    """OpenAI's transcription API: the text of the speech, and with `verbose_json` its timed segments."""
    if response_format not in FORMATS:
        raise InvalidInput(f"unknown response_format {response_format!r}", allowed=list(FORMATS),
                           field="response_format")  # fmt: skip
    heard = await svc._transcribe(await read_upload(file, "file"), language)
    return _formatted(heard, response_format)


def _formatted(heard: dict, fmt: Literal["json", "text", "verbose_json", "srt", "vtt"] | str) -> Response:
    text = heard["text"].strip()
    if fmt == "json":
        return JSONResponse({"text": text})
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    segments = heard.get("segments") or []
    if fmt == "verbose_json":
        return JSONResponse({"task": "transcribe", "language": NAMES.get(heard["language"], heard["language"]),
                             "duration": heard["duration_s"], "text": text,
                             "segments": [_segment(i, s) for i, s in enumerate(segments)]})  # fmt: skip
    return PlainTextResponse(_captions(segments, vtt=fmt == "vtt"))


def _segment(i: int, s: dict) -> dict:
    return {"id": i, "seek": 0, "start": s["start"], "end": s["end"], "text": s["text"], "tokens": [],
            "temperature": 0.0, "avg_logprob": s["avg_logprob"], "compression_ratio": 0.0,
            "no_speech_prob": s["no_speech_prob"]}  # fmt: skip


def _captions(segments: list[dict], vtt: bool) -> str:
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        h, m, s, ms = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000
        return f"{h:02d}:{m:02d}:{s:02d}{'.' if vtt else ','}{ms:03d}"

    cues = [f"{stamp(s['start'])} --> {stamp(s['end'])}\n{s['text'].strip()}\n" for s in segments]
    if vtt:
        return "WEBVTT\n\n" + "\n".join(cues)
    return "\n".join(f"{i + 1}\n{cue}" for i, cue in enumerate(cues))
