"""Audio in, video out: any voice drives the face. `POST /api/v1/animate` (an audio file, optional text -> the
MP4, answered as /api/v1/generate answers) and `POST /api/v1/animate/stream` (the same as a fragmented MP4 sent
while it is made). The audio takes the place of the TTS: its timed phonemes come from the aligner
(services/audio_in.py), then the renderer, the MP4 writer and the stream are the text path's own."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import StreamingResponse

from models.align import checked_language
from models.text import normalize_text
from services.app import SPEAK_ERRORS, UPLOAD, streamed
from services.audio_in import align, aligned_pieces, decode_upload
from services.backends import Service
from services.routes_video import video_response
from services.schemas import (
    ID_PATTERN,
    LANGUAGE_PATTERN,
    MAX_CHARS,
    GenerateRequest,
    GenerateResponse,
    RenderRequest,
    error_responses,
    pack_audio,
)
from services.streaming import stream_response

router = APIRouter()
ANIMATE_ERRORS = SPEAK_ERRORS | error_responses(413)
AUDIO_DOC = "the speech: wav, mp3, ogg (opus or vorbis), flac, m4a (aac) or webm; at most audio_in.max_audio_s"


@dataclass
class AnimateForm:
    audio: UploadFile
    text: str | None
    language: str
    avatar: str
    size: int | None
    fps: float | None
    seed: int


def animate_form(
    audio: UploadFile = File(description=AUDIO_DOC, **UPLOAD),
    text: str | None = Form(None, max_length=MAX_CHARS, description="what the audio says, when known: the mouth "
                            "is then aligned to it (closer than recognised speech)"),
    language: str = Form("en", pattern=LANGUAGE_PATTERN, max_length=12, description="the language spoken"),
    avatar: str = Form("default", pattern=ID_PATTERN, description="avatar id from GET /api/v1/avatars"),
    size: int | None = Form(None, ge=128, le=1024, multiple_of=2, description="square frame size, even"),
    fps: float | None = Form(None, ge=10, le=60, description="frames per second"),
    seed: int = Form(0, ge=0, le=2**32 - 1, description="seed of blinks and head motion"),
) -> AnimateForm:  # fmt: skip
    return AnimateForm(audio, text, language, avatar, size, fps, seed)


Form_ = Annotated[AnimateForm, Depends(animate_form)]


async def _checked(svc, form: AnimateForm):
    """(text, language code, samples, rate): the text and language are checked before the upload is decoded."""
    text = normalize_text(form.text, MAX_CHARS) if form.text and form.text.strip() else None
    language = checked_language(text, form.language)
    audio, sr = await decode_upload(svc, form.audio)
    return text, language, audio, sr


@router.post("/api/v1/animate", response_model=GenerateResponse, tags=["audio in"], responses=ANIMATE_ERRORS)
async def animate(svc: Service, form: Form_) -> GenerateResponse:
    """Animate the avatar with speech from anywhere (a recording, another TTS, a cloned voice): multipart
    `audio`, optional `text` and `language`; the MP4 is then at `video_url`. `metadata.mouth` says how the mouth
    was timed: aligned (with the text), transcribed (with the words heard), recognized, or spectral."""
    t0 = time.perf_counter()
    text, language, audio, sr = await _checked(svc, form)
    found = await align(svc, audio, sr, text, language)
    rreq = RenderRequest(avatar=form.avatar, audio=pack_audio(audio), sample_rate=sr, phonemes=found["phonemes"],
                         fps=form.fps, size=form.size, seed=form.seed)  # fmt: skip
    return await video_response(svc, rreq, t0, language=language, voice="upload", mouth=found["source"],
                                align_ms=found["align_ms"])  # fmt: skip


@router.post("/api/v1/animate/stream", tags=["audio in"], response_class=StreamingResponse,
             responses=streamed("video/mp4") | error_responses(413))  # fmt: skip
async def animate_stream(svc: Service, form: Form_) -> StreamingResponse:
    """The same, as a fragmented MP4 (H.264 + AAC) sent while it is made: play it with Media Source Extensions,
    as /api/v1/stream. The first piece (up to ~3 s, cut at a pause) is on its way before the rest is aligned."""
    text, language, audio, sr = await _checked(svc, form)
    body = GenerateRequest(text="audio", language="en", avatar=form.avatar, size=form.size, fps=form.fps,
                           seed=form.seed)  # fmt: skip
    producer = functools.partial(aligned_pieces, svc, audio, sr, text, language)
    return await stream_response(svc, body, speech_from=producer)
