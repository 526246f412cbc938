"""Video routes: a whole MP4 (`/api/v1/generate`, then `/api/v1/videos/{name}`) and live streams
(`/api/v1/stream`, `/api/v1/stream.mp4`)."""

from __future__ import annotations

import base64
import os
import time
import uuid

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from models.errors import InvalidInput
from services.app import SPEAK_ERRORS, streamed
from services.backends import Service
from services.schemas import (
    ID_PATTERN,
    LANGUAGE_PATTERN,
    LANGUAGES,
    MAX_CHARS,
    SPEED,
    TEXT_PATTERN,
    VIDEO_NAME_PATTERN,
    GenerateMetadata,
    GenerateRequest,
    GenerateResponse,
    RenderRequest,
    SynthesisRequest,
    error_responses,
    unpack_audio,
)
from services.streaming import stream_response

router = APIRouter()
_MP4 = {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}}
VIDEO_RESPONSES = {
    200: _MP4 | {"description": "the whole MP4"},
    206: _MP4 | {"description": "the requested byte range (Content-Range)"},
} | error_responses(400, 404, 416)  # fmt: skip
VIDEO_HEAD_RESPONSES = {
    200: {"content": {"video/mp4": {}}, "description": "the MP4's Content-Length, no body"},
} | error_responses(400, 404)  # fmt: skip
VIDEO_NAME = PathParam(pattern=VIDEO_NAME_PATTERN, description="a name from `video_url`, e.g. 20260101-120000-abc.mp4")


@router.post("/api/v1/stream", tags=["video"], response_class=StreamingResponse, responses=streamed("video/mp4"))
async def stream(svc: Service, body: GenerateRequest) -> StreamingResponse:
    """Speak `text` as a live fragmented MP4 (H.264 + AAC), sent while it is made: play it with Media Source
    Extensions (see /demo). The body is the same as /api/v1/generate."""
    return await stream_response(svc, body)


@router.get("/api/v1/stream.mp4", tags=["video"], response_class=StreamingResponse, responses=streamed("video/mp4"))
async def stream_get(
    svc: Service,
    text: str = Query(min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN),
    language: str = Query("en", pattern=LANGUAGE_PATTERN, max_length=12, json_schema_extra={"enum": LANGUAGES}),
    avatar: str = Query("default", pattern=ID_PATTERN),
    voice: str = Query("default", pattern=ID_PATTERN),
    size: int | None = Query(None, ge=128, le=1024, multiple_of=2),
    fps: float | None = Query(None, ge=10, le=60),
    speed: float = Query(1.0, ge=SPEED["ge"], le=SPEED["le"]),
    seed: int = Query(0, ge=0, le=2**32 - 1),
    request: Request = None,
) -> StreamingResponse:
    """The same stream for a plain link: `/api/v1/stream.mp4?text=Hello`."""
    fields = {"text": text, "language": language, "avatar": avatar, "voice": voice, "size": size, "fps": fps,
              "speed": speed, "seed": seed}  # fmt: skip
    if unknown := sorted(set(request.query_params) - set(fields)):
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", allowed=sorted(fields), field=unknown[0])
    try:
        body = GenerateRequest(**fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    return await stream_response(svc, body)


@router.post("/api/v1/generate", response_model=GenerateResponse, tags=["video"], responses=SPEAK_ERRORS)
async def generate(svc: Service, body: GenerateRequest) -> GenerateResponse:
    """Speak `text` with the chosen avatar; the MP4 is then at `video_url`."""
    t0 = time.perf_counter()
    speech = await svc._speak(
        SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed)
    )
    rreq = RenderRequest(avatar=body.avatar, audio=speech.audio, sample_rate=speech.sample_rate,
                         phonemes=speech.phonemes, fps=body.fps, size=body.size, seed=body.seed)  # fmt: skip
    return await video_response(svc, rreq, t0, tts_ms=speech.tts_ms, language=body.language, voice=body.voice,
                                mouth=speech.mouth)  # fmt: skip


async def video_response(svc, rreq: RenderRequest, t0: float, **meta) -> GenerateResponse:
    """Render the speech into an MP4, store it (atomically) and answer with its URL and the request's costs;
    `meta`: the fields of GenerateMetadata the caller knows (tts_ms, language, voice, mouth...)."""
    video = await svc._render(rreq)
    name, tmp = svc.store.new_name(), svc.store.temp_path()
    tmp.write_bytes(base64.b64decode(video.video))
    svc.store.commit(tmp, name)
    total = (time.perf_counter() - t0) * 1000
    dur = len(unpack_audio(rreq.audio)) / rreq.sample_rate
    meta = GenerateMetadata(
        **{"tts_ms": 0.0, **meta}, avatar_ms=video.avatar_ms, encode_ms=video.encode_ms, duration_ms=total,
        audio_duration_s=dur, rtf=total / 1000 / max(dur, 1e-6), n_frames=video.n_frames,
        fps=rreq.fps or svc.settings.avatar.fps, size=rreq.size or svc.settings.avatar.size, avatar=rreq.avatar,
    )  # fmt: skip
    return GenerateResponse(job_id=uuid.uuid4().hex, video_url=f"/api/v1/videos/{name}", metadata=meta)


@router.get("/api/v1/videos/{name}", tags=["video"], response_class=FileResponse, responses=VIDEO_RESPONSES)
async def video(svc: Service, name: str = VIDEO_NAME) -> Response:
    """The MP4 (Range requests supported, so browsers can seek)."""
    return LeasedVideo(svc.store, name)


@router.head("/api/v1/videos/{name}", tags=["video"], response_class=Response, responses=VIDEO_HEAD_RESPONSES)
async def video_head(svc: Service, name: str = VIDEO_NAME) -> Response:
    """The MP4's headers (its length), without the body."""
    path = svc.store.path(name)
    return Response(
        headers={"content-length": str(path.stat().st_size), "accept-ranges": "bytes"}, media_type="video/mp4"
    )


class LeasedVideo(FileResponse):
    """A stored MP4 streamed from disk by Starlette (single and multiple ranges, 206), held by a retention lease
    until the response is over, sent or abandoned: the sweeper never removes a file mid-send. Our contract on top:
    a Range that is not valid syntax is ignored (200, the whole file; RFC 9110 allows it), and one no byte
    satisfies is our 416 JSON with `Content-Range: bytes */size`."""

    def __init__(self, store, name: str):
        self._lease = store.lease(name)
        super().__init__(self._lease.__enter__(), media_type="video/mp4")

    async def __call__(self, scope, receive, send) -> None:
        try:
            scope, refusal = _checked_range(scope, os.stat(self.path).st_size)
            await (refusal or super().__call__)(scope, receive, send)
        finally:
            self._lease.__exit__(None, None, None)


def _checked_range(scope: dict, size: int) -> tuple[dict, JSONResponse | None]:
    """The scope without a malformed Range header, or our 416 answer for an unsatisfiable one."""
    headers = scope.get("headers") or []
    value = next((v.decode("latin-1") for k, v in headers if k == b"range"), None)
    if value is None:
        return scope, None
    try:
        FileResponse._parse_range_header(value, size)  # Starlette's own parser (the one that will serve it)
        return scope, None
    except MalformedRangeHeader:
        return {**scope, "headers": [(k, v) for k, v in headers if k != b"range"]}, None
    except RangeNotSatisfiable:
        body = {"error": "range_not_satisfiable", "message": f"no byte of the {size}-byte file is in {value!r}",
                "allowed": f"bytes=0-{size - 1}"}  # fmt: skip
        return scope, JSONResponse(body, status_code=416, headers={"content-range": f"bytes */{size}",
                                                                    "accept-ranges": "bytes"})  # fmt: skip
