"""Request and response models of the services (pydantic), with sample values so Swagger works as is."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from models.settings import load_settings
from models.storage import SAFE_NAME
from models.text import LANGUAGE_ALIASES

Phonemes = list[tuple[str, float, float]] | None


def pack_audio(audio: np.ndarray) -> str:
    """float32 [-1, 1] -> base64 of little-endian int16 PCM (compact over HTTP between services)."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    return base64.b64encode(pcm.tobytes()).decode()


def unpack_audio(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), "<i2").astype(np.float32) / 32767


class Failure(BaseModel):
    """An item of a batch that failed on bad input: the status and body the API should answer with."""

    status: int
    body: dict


# Declared bounds of the public API: a value valid by the schema is accepted (or is an unknown id: 404).
_SETTINGS = load_settings()
MAX_CHARS = _SETTINGS.tts.max_chars
TEXT_PATTERN = r"[^\W_]"  # something to say: a letter or digit (str.isalnum), as models/text.py requires
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # avatar and voice ids (models/avatar/store.py, models/tts/voices.py)
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"
VIDEO_NAME_PATTERN = SAFE_NAME.pattern  # the names the output store gives (models/storage.py)
SPEED = {"ge": 0.25, "le": 4.0, "strict": True}  # strict numbers: `true` is not a speed (nor a seed, size...)
# The languages of the default voice (settings tts.routes) and their aliases, as the schema's enum; a cloned
# voice may speak others (its `languages` in GET /api/v1/voices), and the server accepts any code it knows.
LANGUAGES = sorted({*_SETTINGS.tts.routes, *(a for a, c in LANGUAGE_ALIASES.items() if c in _SETTINGS.tts.routes)})
LANGUAGE_DOC = {"enum": LANGUAGES, "pattern": LANGUAGE_PATTERN, "maxLength": 12}


class ErrorBody(BaseModel):
    """Every error of the API: what was wrong, and what is allowed."""

    error: str = Field(description="a stable code, e.g. invalid_request, not_found, overloaded", examples=["not_found"])
    message: str = Field(description="for people", examples=["unknown avatar 'bob'"])
    field: str | None = Field(None, description="the request field at fault")
    allowed: object | None = Field(None, description="what is allowed instead (a list, a range...)")
    details: list[dict] | None = Field(None, description="invalid_request: each field at fault and its problem")


_RETRY = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
ERRORS: dict[int, tuple[str, dict | None]] = {
    400: ("invalid input: a malformed body, a field out of bounds (`invalid_request`), an unsupported value", None),
    401: ("missing or wrong API key (when API keys are configured)", None),
    404: ("not found: an unknown avatar, voice or video (`allowed` lists the known ids)", None),
    409: ("conflict: the default avatar or voice cannot be deleted", None),
    413: ("the upload is larger than serving.max_upload_mb", None),
    416: ("the Range cannot be satisfied (Content-Range: bytes */size)", None),
    422: ("the upload is readable but unusable: no face found in the photo", None),
    429: ("too many requests in flight: retry after Retry-After seconds", _RETRY),
    502: ("a dependency (TTS or avatar service, the LLM) failed on this request", None),
    503: ("a dependency is down or overloaded, or an engine is missing: retry after Retry-After seconds", _RETRY),
    504: ("the LLM did not answer in time", None),
}


def error_responses(*codes: int, model: type[BaseModel] = ErrorBody) -> dict:
    """The OpenAPI `responses` of a route's errors, each an `ErrorBody` (401 and 429 apply to every route)."""
    out: dict = {}
    for code in sorted({*codes, 401, 429}):
        description, headers = ERRORS[code]
        out[code] = {"model": model, "description": description} | ({"headers": headers} if headers else {})
    return out


class SynthesisRequest(BaseModel):
    text: str = "Hello! I am a talking portrait."
    language: str = "en"
    voice: str | None = None
    speed: float = 1.0
    urgent: bool = False  # a caller waits on this speech before anything else: SynthesisOptions.urgent


class SynthesisResult(BaseModel):
    audio: str = ""  # base64 int16 PCM
    sample_rate: int = 0
    phonemes: Phonemes = None
    tts_ms: float = 0
    mouth: str | None = None  # where the timings came from (models/tts/base.py MOUTH_SOURCES)
    error: Failure | None = None


class AlignRequest(BaseModel):
    """Speech from elsewhere to find timed phonemes in (TTSService.align)."""

    audio: str  # base64 int16 PCM
    sample_rate: int = Field(gt=0, le=192000)
    text: str | None = None
    language: str = "en"
    live: bool = False  # a piece of a live stream: the fastest method (phone recognition in English)


class RenderRequest(BaseModel):
    avatar: str = "default"
    audio: str  # base64 int16 PCM
    sample_rate: int = Field(gt=0, le=192000)
    phonemes: Phonemes = None
    fps: float | None = Field(None, ge=10, le=60)
    size: int | None = Field(None, ge=128, le=1024, multiple_of=2)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class RenderResult(BaseModel):
    video: str = ""  # base64 MP4
    n_frames: int = 0
    avatar_ms: float = 0
    encode_ms: float = 0
    error: Failure | None = None


class ChunkRequest(BaseModel):
    """Frames of a stream to render and encode: one row of controls per frame (see Controls.poses)."""

    avatar: str = "default"
    size: int | None = Field(None, ge=128, le=1024, multiple_of=2)
    fps: float | None = Field(None, ge=10, le=60)
    start: int = Field(0, ge=0, description="stream frame index of the first row")
    poses: list[list[float]] = Field(
        default_factory=lambda: [[0.0] * 8],
        max_length=600,
        description="jaw, wide, blink, roll, dx, dy, scale, tongue (rows of the first 7 are accepted: tongue 0)",
    )


class ChunkResult(BaseModel):
    chunk: dict | None = None  # EncodedChunk.pack()
    render_ms: float = 0
    encode_ms: float = 0
    error: Failure | None = None


class GenerateRequest(BaseModel):
    text: str = Field(
        "Hello! I am a talking portrait, rendered on your CPU.",
        min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN, description="what to say",
    )  # fmt: skip
    language: str = Field(
        "en", pattern=LANGUAGE_PATTERN, max_length=12, json_schema_extra={"enum": LANGUAGES},
        description="language code; see GET /api/v1/voices for each voice's languages",
    )  # fmt: skip
    avatar: str = Field("default", pattern=ID_PATTERN, description="avatar id from GET /api/v1/avatars")
    voice: str = Field("default", pattern=ID_PATTERN, description="voice id from GET /api/v1/voices")
    fps: float | None = Field(
        None, ge=10, le=60, strict=True, description="frames per second (10-60); default from settings"
    )
    size: int | None = Field(
        None, ge=128, le=1024, multiple_of=2, strict=True,
        description="square frame size, even, 128-1024; default from settings",
    )  # fmt: skip
    speed: float = Field(1.0, **SPEED, description="speaking rate, 0.25-4")
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True, description="seed of blinks and head motion")


class GenerateMetadata(BaseModel):
    tts_ms: float
    avatar_ms: float
    encode_ms: float
    duration_ms: float
    audio_duration_s: float
    rtf: float
    n_frames: int
    fps: float
    size: int
    language: str
    voice: str
    avatar: str
    mouth: str | None = Field(
        None, description="where the mouth's timings came from: phonemes (the voice's own), aligned (found in the "
        "audio with its text), transcribed (with the words heard), recognized (phone by phone), spectral "
        "(formants), loudness (nothing else could run)", examples=["phonemes"],
    )  # fmt: skip
    align_ms: float | None = Field(None, description="audio in: time spent finding the timings in the audio")


class GenerateResponse(BaseModel):
    job_id: str
    status: Literal["completed"] = "completed"
    message: str = "video generated"
    video_url: str
    metadata: GenerateMetadata


class TTSRequest(BaseModel):
    text: str = Field("Hello! I am a talking portrait.", min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN)
    language: str = Field("en", pattern=LANGUAGE_PATTERN, max_length=12, json_schema_extra={"enum": LANGUAGES})
    voice: str = Field("default", pattern=ID_PATTERN)
    speed: float = Field(1.0, **SPEED, description="speaking rate, 0.25-4")


def _voice_id(value):
    """OpenAI's custom-voice form {"id": ...} as its id."""
    return value.get("id") if isinstance(value, dict) else value


_VOICE_ID = {"type": "string", "pattern": ID_PATTERN}
OpenAIVoice = Annotated[
    str,
    BeforeValidator(_voice_id),
    Field(pattern=ID_PATTERN),
    WithJsonSchema({"anyOf": [_VOICE_ID, {"type": "object", "properties": {"id": _VOICE_ID}, "required": ["id"]}]}),
]


class SpeechRequest(BaseModel):
    """OpenAI-compatible /v1/audio/speech: the same fields, defaults and formats as OpenAI's."""

    model: str = Field("tts-1", max_length=64, description="accepted for compatibility (tts-1, tts-1-hd, piper...)")
    input: str = Field("Hello! I am a talking portrait.", min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN)
    voice: OpenAIVoice = Field(
        "alloy", description="an OpenAI voice name (alloy, echo, nova...: mapped by settings tts.openai_voices, "
        "else the default voice), a voice id from GET /api/v1/voices, or {\"id\": voice id}",
    )  # fmt: skip

    instructions: str | None = Field(
        None, max_length=4096, description="accepted for compatibility; the engines here have no style prompt"
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        "mp3", description="pcm is raw 16-bit little-endian mono at 24 kHz, as OpenAI's"
    )
    speed: float = Field(1.0, **SPEED, description="speaking rate, 0.25-4")
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="audio: the file's bytes as made; sse: server-sent events speech.audio.delta "
        "(base64 audio) and speech.audio.done",
    )  # fmt: skip


SESSION_PATTERN = r"^[0-9a-f]{32}$"  # the ids the server gives to sessions and turns


class ChatRequest(BaseModel):
    text: str = Field("Hello! Who are you?", min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN)
    persona: str | None = Field(None, pattern=ID_PATTERN, description="persona id from GET /api/v1/personas")
    session: str | None = Field(None, pattern=SESSION_PATTERN, description="continue a conversation; none: a new one")
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN, max_length=12, description="the user's language; default: the persona's"
    )


class LiveHello(BaseModel):
    """The first message on `/api/v1/live` (JSON text). Then the client sends its microphone as binary frames of
    16-bit little-endian mono PCM at 16 kHz (20-30 ms each is typical), and JSON `{"type": "playback",
    "position_s": N}` now and then (the playhead in the current answer's video: what was heard when the user
    interrupts)."""

    model_config = {"extra": "forbid"}

    persona: str | None = Field(None, pattern=ID_PATTERN, description="persona id (GET /api/v1/personas)")
    session: str | None = Field(None, pattern=SESSION_PATTERN, description="continue this conversation")
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN, max_length=12, description="none: detected")
    sample_rate: int = Field(16000, description="of the PCM frames; only 16000 is taken")
    size: int | None = Field(None, ge=128, le=1024, multiple_of=2, strict=True)
    fps: float | None = Field(None, ge=10, le=60)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    end_silence_ms: int = Field(600, ge=200, le=3000, description="silence that ends the user's turn")
