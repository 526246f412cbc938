"""AvatarPipeline: the public HTTP API. It calls TTSService and AvatarService (in-process dependencies
started by `bentoml serve`, or remote ones when AVATAR_TTS_URL / AVATAR_RENDER_URL are set) and stores videos.

Routes are a FastAPI app mounted behind BentoML's own (/healthz, /readyz, /livez, /metrics, /docs.json, /), so
they appear in the same OpenAPI document and Swagger page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

import bentoml
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import AvatarError, EngineUnavailable, InvalidInput, PayloadTooLarge
from models.media.fragments import EncodedChunk
from models.settings import load_settings
from services.auth import ApiKeys, with_security
from services.avatar import AvatarService
from services.breaker import CONNECTION_ERRORS, Breaker, Breakers, DependencyDown
from services.common import rewrite_response
from services.conversation import Conversations
from services.openai_errors import OpenAIError, OpenAIErrors
from services.schemas import (
    ID_PATTERN,
    LANGUAGE_PATTERN,
    LANGUAGES,
    MAX_CHARS,
    SESSION_PATTERN,
    SPEED,
    TEXT_PATTERN,
    VIDEO_NAME_PATTERN,
    ChatRequest,
    ChunkRequest,
    GenerateMetadata,
    GenerateRequest,
    GenerateResponse,
    RenderRequest,
    SpeechRequest,
    SynthesisRequest,
    TTSRequest,
    error_responses,
    unpack_audio,
)
from services.tts import TTSService

SETTINGS = load_settings()
SERVING = SETTINGS.serving
app = FastAPI(title="realtime-avatar API")


def _streamed(media_type: str) -> dict:
    """OpenAPI description of a body sent while it is made (bad input is refused before it starts)."""
    ok = {200: {"content": {media_type: {}}, "description": f"{media_type}, sent while it is made (chunked)"}}
    return ok | SPEAK_ERRORS


SPEECH_RESPONSES = {
    200: {"content": {"audio/*": {}, "text/event-stream": {}}, "description": "audio as it is made (chunked), "
          "or server-sent events with stream_format: sse"},
} | error_responses(400, 404, 502, 503, model=OpenAIError)  # fmt: skip
NO_STORE = {"cache-control": "no-store"}
EVENT_RESPONSES = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events: data: {\"type\": ...}"},
} | error_responses(400, 404, 502, 503, 504)  # fmt: skip
SPEAK_ERRORS = error_responses(400, 404, 502, 503)  # text in, media out: bad input, unknown avatar/voice, backends
BACKEND_ERRORS = error_responses(502, 503)  # routes that only ask a dependency
_MP4 = {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}}
VIDEO_RESPONSES = {
    200: _MP4 | {"description": "the whole MP4"},
    206: _MP4 | {"description": "the requested byte range (Content-Range)"},
} | error_responses(400, 404, 416)  # fmt: skip
VIDEO_HEAD_RESPONSES = {
    200: {"content": {"video/mp4": {}}, "description": "the MP4's Content-Length, no body"},
} | error_responses(400, 404)  # fmt: skip
VIDEO_NAME = PathParam(pattern=VIDEO_NAME_PATTERN, description="a name from `video_url`, e.g. 20260101-120000-abc.mp4")
UPLOAD = {"json_schema_extra": {"minLength": 1}}  # an empty upload is refused (400)
HEALTH_RESPONSES = {503: {"description": "a dependency is down (`dependencies` says which); Retry-After",
                          "content": {"application/json": {}}}}  # fmt: skip


class Unavailable(EngineUnavailable):
    code = "dependency_unavailable"


@app.exception_handler(AvatarError)
async def _avatar_error(_: Request, exc: AvatarError) -> JSONResponse:
    headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"field": ".".join(str(p) for p in e["loc"][1:]), "problem": _problem(e)} for e in exc.errors()]
    body = {"error": "invalid_request", "message": "the request body is malformed or has invalid fields"}
    return JSONResponse(body | {"details": errors}, status_code=400)


PATTERN_PROBLEMS = {
    TEXT_PATTERN: "is empty or has nothing to say: it needs a letter or digit",
    ID_PATTERN: "is not an id: lower-case letters, digits, '-' and '_', at most 64",
    LANGUAGE_PATTERN: "is not a language code such as en, es, zh-cn",
    VIDEO_NAME_PATTERN: "is not a video name returned by the API, e.g. 20260101-120000-abc.mp4",
}


def _problem(error: dict) -> str:
    """A validation error in words: our patterns explained, an empty string called empty."""
    if error["type"] == "string_pattern_mismatch":
        return PATTERN_PROBLEMS.get(error.get("ctx", {}).get("pattern"), error["msg"])
    if error["type"] == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "is empty"
    return error["msg"]


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own errors (an unknown path under our routes: 404, a method a route lacks: 405) in our shape.
    A 405's Allow lists the methods of every route of the path (Starlette names only the first route's)."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": code, "message": str(exc.detail)}
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        from starlette.routing import Match

        methods = [
            m for m in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
            if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in app.routes)
        ]  # fmt: skip
        headers["Allow"] = ", ".join(methods)
        body["allowed"] = methods
    return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


def _check(result) -> None:
    """Re-raise a dependency's per-item failure as the same HTTP error."""
    err = result.error if hasattr(result, "error") else result.get("error")
    if err:
        err = err if isinstance(err, dict) else err.model_dump()
        raise _Passthrough(err["status"], err["body"])


class _Passthrough(AvatarError):
    def __init__(self, status: int, body: dict):
        super().__init__(body.get("message", "error"))
        self.status, self.body = status, body

    def to_dict(self) -> dict:
        return self.body


class BackendFailed(AvatarError):
    status = 502
    code = "backend_error"


async def _call(fn, *args):
    """Call a dependency: down or overloaded -> 503 with Retry-After; a crash inside it -> 502.

    Our dependency calls are pure functions of their input, so a connection the other side dropped before
    answering (a keep-alive connection closed as it was reused) is retried once, if a quick probe finds the
    dependency answering; a dependency found down is refused at once until it answers again (services/breaker)."""
    breaker = BREAKERS.of(fn)
    try:
        if breaker:
            await breaker.check()
        try:
            return await fn(*args)
        except Exception as exc:
            if type(exc).__name__ not in ("ServerDisconnectedError", "ClientOSError"):
                raise
            if breaker:
                breaker.trip()
                await breaker.check()
            else:
                await asyncio.sleep(0.05)
            return await fn(*args)
    except DependencyDown as exc:
        raise Unavailable(f"a backend service is unavailable: {exc}") from exc
    except AvatarError:
        raise
    except Exception as exc:  # BentoML client errors: connection refused, 503 from its batcher, timeouts, 500s
        if breaker and type(exc).__name__ in CONNECTION_ERRORS:
            breaker.trip()
        code = int(getattr(exc, "error_code", 0) or 0)
        if code >= 500 and code not in (502, 503, 504):
            raise BackendFailed(f"a backend service failed on this request: {exc}") from exc
        raise Unavailable(f"a backend service is unavailable or overloaded: {type(exc).__name__}") from exc


class ConcurrencyLimit:
    """429 with Retry-After and a JSON body once `limit` requests are in flight (BentoML's own limiter answers
    without Retry-After and outside our error shape). Health, metrics and docs routes are never limited."""

    SKIP = ("/health", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/demo")

    def __init__(self, app, limit: int):
        import asyncio

        self.app, self.limit = app, limit
        self.semaphore = asyncio.Semaphore(limit)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in self.SKIP:
            return await self.app(scope, receive, send)
        if self.semaphore.locked():
            body = {"error": "overloaded", "message": "too many requests in flight; retry shortly",
                    "allowed": f"at most {self.limit} concurrent requests per worker"}  # fmt: skip
            return await JSONResponse(body, status_code=429, headers={"Retry-After": "2"})(scope, receive, send)
        async with self.semaphore:
            await self.app(scope, receive, send)


class Contract:
    """The HTTP contract where BentoML's outer app answers: its plain-text 404 (a path no route matches, e.g.
    `/api/v1/videos/..%2Fx`) becomes our JSON error, and /docs.json loses FastAPI's automatic 422 (BentoML builds
    the document from our routes with `get_openapi`, no hook): invalid input is our 400 `invalid_request`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"] == "/docs.json"

        def wanted(start: dict) -> bool:
            plain = dict(start.get("headers") or []).get(b"content-type", b"").startswith(b"text/plain")
            return docs or (start["status"] == 404 and plain)

        async def replace(start: dict, body: bytes) -> None:
            await _send_replaced(start, body, docs, scope, receive, send)

        await rewrite_response(self.app, scope, receive, send, wanted, replace)


async def _send_replaced(start: dict, body: bytes, docs: bool, scope, receive, send) -> None:

    if docs and start["status"] == 200:
        response = JSONResponse(with_security(_without_422(json.loads(body)), SERVING.api_keys))
    elif docs:
        response = Response(body, status_code=start["status"], headers={"content-type": "application/json"})
    else:
        path = scope["path"]
        response = JSONResponse({"error": "not_found", "message": f"no such route: {path}"}, status_code=404)
    await response(scope, receive, send)


def _without_422(spec: dict) -> dict:
    """The OpenAPI document without FastAPI's automatic 422 (we answer 400 `invalid_request`, documented)."""
    for item in spec.get("paths", {}).values():
        for op in item.values():
            responses = op.get("responses", {}) if isinstance(op, dict) else {}
            schema = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]

    schemas = spec.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(spec.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


@bentoml.service(name="avatar-pipeline", traffic={"timeout": SERVING.timeout_s}, workers=1)
@bentoml.asgi_app(app, path="/")
class AvatarPipeline:
    tts = bentoml.depends(TTSService, url=SERVING.tts_url) if SERVING.tts_url else bentoml.depends(TTSService)
    renderer = (
        bentoml.depends(AvatarService, url=SERVING.render_url) if SERVING.render_url else bentoml.depends(AvatarService)
    )

    def __init__(self) -> None:
        from models.storage import OutputStore

        self.settings = load_settings()
        st = self.settings.storage
        self.store = OutputStore(st.root / "outputs", st.max_age_hours * 3600, st.max_total_mb * 1e6)
        self.started = time.time()
        self.pacers: set[Pacer] = set()  # the live streams of this worker
        self.conversations = Conversations(self.settings)
        for name, dependency in (("tts", self.tts), ("avatar", self.renderer)):
            probe = lambda d=dependency: d.to_async.info()  # noqa: E731  (the client's endpoints appear on first use)
            BREAKERS.add(Breaker(name, probe, PROBE_S), lambda d=dependency: getattr(d.to_async, "__dict__", {}))

    async def _speak(self, req: SynthesisRequest):
        fn = self.tts.to_async.synthesize if SERVING.batching else self.tts.to_async.synthesize_one
        result = await _call(fn, [req] if SERVING.batching else req)
        result = result[0] if SERVING.batching else result
        result = result if not isinstance(result, dict) else _model(result)
        _check(result)
        return result

    async def _render(self, req: RenderRequest):
        return await _dispatch(self.renderer.to_async.render, self.renderer.to_async.render_one, req)

    async def _render_chunk(self, req: ChunkRequest):
        return await _dispatch(self.renderer.to_async.render_chunk, self.renderer.to_async.render_chunk_one, req)

    async def _stream(
        self, body: GenerateRequest, pieces: AsyncIterator[str] | None = None, on_piece=None
    ) -> AsyncIterator[bytes]:
        """One stream: speech piece by piece (ahead, in a task), each piece planned here and its chunks rendered
        and encoded by the avatar service (batched with other streams' chunks), muxed here into fMP4. After the
        first fragment, two chunks are in flight, so the next one renders while this one travels and is muxed.
        `pieces` (default: `body.text` cut into sentences) may arrive while the stream plays, e.g. from an LLM;
        `on_piece(text, at_s)` hears where each piece starts in the video."""
        from models.avatar.controls import MotionConfig
        from models.stream import CHUNK_FRAMES, LiveVideo

        pieces = pieces or _as_async(_pieces(body.text, self.settings.tts.max_chars))
        size, fps = body.size or self.settings.avatar.size, body.fps or self.settings.avatar.fps
        # Starting beside other streams, a first fragment of ~0.7 s gives the player slack while the CPU is shared.
        chunks = CHUNK_FRAMES if not self.pacers else (18, 25)
        live = LiveVideo(size, fps, self.settings.video, MotionConfig(seed=body.seed), chunk_frames=chunks)
        speech: asyncio.Queue = asyncio.Queue(4)
        synth = SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed)
        pacer = Pacer(self.pacers, SERVING.stream_ahead_s)
        producer = asyncio.create_task(self._speak_pieces(pieces, synth, speech, pacer))
        window: deque[asyncio.Task] = deque()
        self.pacers.add(pacer)
        try:
            while (piece := await _next_piece(speech)) is not None:
                if on_piece:
                    on_piece(piece.text, live.duration)
                for job in live.add_speech(piece):
                    req = ChunkRequest(avatar=body.avatar, size=size, fps=fps, start=job.start,
                                       poses=job.controls.poses())  # fmt: skip
                    await pacer.wait()
                    window.append(asyncio.create_task(self._render_chunk(req)))
                    if len(window) >= (2 if live.muxer.n_frames else 1):
                        yield pacer.sent(live.add_video(EncodedChunk.unpack((await window.popleft()).chunk)), live)
                while window:  # the piece's last chunks go out before waiting for more speech
                    yield pacer.sent(live.add_video(EncodedChunk.unpack((await window.popleft()).chunk)), live)
            yield live.finish()
        except BaseException:
            live.abort()
            raise
        finally:
            self.pacers.discard(pacer)
            producer.cancel()
            for task in window:
                task.cancel()

    async def _speak_pieces(
        self, pieces: AsyncIterator[str], req: SynthesisRequest, out: asyncio.Queue, pacer: Pacer | None = None
    ) -> None:
        """Synthesise the pieces in order into `out` (a SpeechChunk each, then None; or the error)."""
        from models.tts.base import Phoneme, SpeechChunk

        try:
            async for text in pieces:
                if pacer:
                    await pacer.wait()
                s = await self._speak(req.model_copy(update={"text": text}))
                phonemes = [Phoneme(*p) for p in s.phonemes] if s.phonemes is not None else None
                await out.put(SpeechChunk(unpack_audio(s.audio), s.sample_rate, text, phonemes))
            await out.put(None)
        except Exception as exc:  # noqa: BLE001  (handed to the stream, which fails with it)
            await out.put(exc)

    async def _stream_response(self, body: GenerateRequest) -> StreamingResponse:
        """Bad input is a 4xx JSON before the first byte (the first fragment is made before answering); a
        failure later aborts the connection, so a cut stream never looks complete."""
        stream = self._stream(body)
        first = await stream.__anext__()

        async def body_iter() -> AsyncIterator[bytes]:
            yield first
            async for data in stream:
                yield data

        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
        return StreamingResponse(body_iter(), media_type="video/mp4", headers=headers)

    @app.post("/api/v1/stream", tags=["video"], response_class=StreamingResponse, responses=_streamed("video/mp4"))
    async def stream(self, body: GenerateRequest) -> StreamingResponse:
        """Speak `text` as a live fragmented MP4 (H.264 + AAC), sent while it is made: play it with Media Source
        Extensions (see /demo). The body is the same as /api/v1/generate."""
        return await self._stream_response(body)

    @app.get("/api/v1/stream.mp4", tags=["video"], response_class=StreamingResponse, responses=_streamed("video/mp4"))
    async def stream_get(
        self,
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
        return await self._stream_response(body)

    @app.get("/demo", tags=["demo"], response_class=HTMLResponse)
    async def demo(self) -> Response:
        """The web page: type, press Speak, watch the avatar answer as it streams."""
        return _web_file("demo.html")

    @app.get("/demo/{name}", tags=["demo"], include_in_schema=False)
    async def demo_file(self, name: str) -> Response:
        return _web_file(name)

    @app.post("/api/v1/generate", response_model=GenerateResponse, tags=["video"], responses=SPEAK_ERRORS)
    async def generate(self, body: GenerateRequest) -> GenerateResponse:
        """Speak `text` with the chosen avatar; the MP4 is then at `video_url`."""
        t0 = time.perf_counter()
        speech = await self._speak(
            SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed)
        )
        rreq = RenderRequest(avatar=body.avatar, audio=speech.audio, sample_rate=speech.sample_rate,
                             phonemes=speech.phonemes, fps=body.fps, size=body.size, seed=body.seed)  # fmt: skip
        video = await self._render(rreq)
        name = self.store.new_name()
        tmp = self.store.temp_path()
        tmp.write_bytes(base64.b64decode(video.video))
        self.store.commit(tmp, name)
        total = (time.perf_counter() - t0) * 1000
        dur = len(unpack_audio(speech.audio)) / speech.sample_rate
        meta = GenerateMetadata(
            tts_ms=speech.tts_ms, avatar_ms=video.avatar_ms, encode_ms=video.encode_ms, duration_ms=total,
            audio_duration_s=dur, rtf=total / 1000 / max(dur, 1e-6), n_frames=video.n_frames,
            fps=body.fps or self.settings.avatar.fps, size=body.size or self.settings.avatar.size,
            language=body.language, voice=body.voice, avatar=body.avatar,
        )  # fmt: skip
        return GenerateResponse(job_id=uuid.uuid4().hex, video_url=f"/api/v1/videos/{name}", metadata=meta)

    @app.get("/api/v1/videos/{name}", tags=["video"], response_class=FileResponse, responses=VIDEO_RESPONSES)
    async def video(self, request: Request, name: str = VIDEO_NAME) -> Response:
        """The MP4 (Range requests supported, so browsers can seek)."""
        with self.store.lease(name) as path:
            data = path.read_bytes()  # read under the lease; retention never removes a file mid-read
        return _ranged(data, request.headers.get("range"), "video/mp4")

    @app.head("/api/v1/videos/{name}", tags=["video"], response_class=Response, responses=VIDEO_HEAD_RESPONSES)
    async def video_head(self, name: str = VIDEO_NAME) -> Response:
        """The MP4's headers (its length), without the body."""
        path = self.store.path(name)
        return Response(
            headers={"content-length": str(path.stat().st_size), "accept-ranges": "bytes"}, media_type="video/mp4"
        )

    @app.post("/api/v1/tts", tags=["speech"], response_class=StreamingResponse, responses=_streamed("audio/wav"))
    async def tts_wav(self, body: TTSRequest) -> StreamingResponse:
        """Speech only, as a WAV file sent sentence by sentence (the header declares an unknown length)."""
        req = SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed)
        return await self._speech_response(req, "wav")

    @app.post("/v1/audio/speech", tags=["speech"], response_class=StreamingResponse, responses=SPEECH_RESPONSES)
    async def openai_speech(self, body: SpeechRequest) -> StreamingResponse:
        """OpenAI-compatible speech, streamed sentence by sentence as OpenAI's is. `model` and `instructions` are
        accepted and ignored (the configured engine speaks); OpenAI's voice names map to our voices."""
        voice = self.settings.tts.voice_for_openai(body.voice)
        req = SynthesisRequest(text=body.input, voice=voice, speed=body.speed)
        return await self._speech_response(req, body.response_format, sse=body.stream_format == "sse")

    async def _speech_response(self, req: SynthesisRequest, fmt: str, sse: bool = False) -> StreamingResponse:
        """Speech sent as each sentence is synthesised; the first one is made before answering, so bad input is
        a 4xx JSON, and a failure later cuts the connection."""
        from models.media.audio_stream import open_audio_stream

        open_audio_stream(fmt, 24000).close()  # an unknown format is refused before any synthesis
        pieces = _pieces(req.text, self.settings.tts.max_chars)
        t0 = time.perf_counter()
        speech: asyncio.Queue = asyncio.Queue(4)
        producer = asyncio.create_task(self._speak_pieces(_as_async(pieces), req, speech))
        try:
            first = await _next_piece(speech)
        except BaseException:
            producer.cancel()
            raise
        first_ms = (time.perf_counter() - t0) * 1000
        encoder = open_audio_stream(fmt, first.sample_rate)

        async def audio() -> AsyncIterator[bytes]:
            try:
                yield encoder.add(first.audio)
                while (piece := await _next_piece(speech)) is not None:
                    yield encoder.add(piece.audio)
                yield encoder.close()
            finally:
                producer.cancel()

        headers = {"cache-control": "no-store", "x-tts-ms": f"{first_ms:.0f}"}  # time to the first sentence
        if sse:
            return StreamingResponse(_sse_events(audio()), media_type="text/event-stream", headers=headers)
        return StreamingResponse(audio(), media_type=encoder.content_type, headers=headers)

    @app.get("/api/v1/voices", tags=["voices"], responses=BACKEND_ERRORS)
    async def voices(self) -> dict:
        return {"voices": await _call(self.tts.to_async.voices)}

    @app.post("/api/v1/voices", tags=["voices"], status_code=201, responses=error_responses(400, 413, 502, 503))
    async def add_voice(self, clip: UploadFile = File(**UPLOAD), name: str | None = Form(None, max_length=64)) -> dict:
        """Clone a voice from a 3-30 s reference clip (wav/mp3/flac/ogg); needs a cloning engine (xtts)."""
        data = await _read_upload(clip, "clip")
        result = await _call(self.tts.to_async.add_voice, base64.b64encode(data).decode(), name)
        _check(result)
        return result["voice"]

    @app.delete("/api/v1/voices/{voice_id}", tags=["voices"], responses=error_responses(400, 404, 409, 502, 503))
    async def delete_voice(self, voice_id: str = PathParam(pattern=ID_PATTERN)) -> dict:
        result = await _call(self.tts.to_async.delete_voice, voice_id)
        _check(result)
        return result

    @app.get("/api/v1/avatars", tags=["avatars"], responses=BACKEND_ERRORS)
    async def avatars(self) -> dict:
        return {"avatars": await _call(self.renderer.to_async.list_avatars)}

    @app.post("/api/v1/avatars", tags=["avatars"], status_code=201, responses=error_responses(400, 413, 422, 502, 503))
    async def add_avatar(
        self, photo: UploadFile = File(**UPLOAD), name: str | None = Form(None, max_length=64)
    ) -> dict:
        """Upload a portrait photo (PNG/JPEG/WebP); rejected with 422 if no face is found."""
        data = await _read_upload(photo, "photo")
        result = await _call(self.renderer.to_async.add_avatar, base64.b64encode(data).decode(), name)
        _check(result)
        return result["avatar"]

    @app.delete("/api/v1/avatars/{avatar_id}", tags=["avatars"], responses=error_responses(400, 404, 409, 502, 503))
    async def delete_avatar(self, avatar_id: str = PathParam(pattern=ID_PATTERN)) -> dict:
        result = await _call(self.renderer.to_async.delete_avatar, avatar_id)
        _check(result)
        return result

    @app.get("/api/v1/assets/images", tags=["compatibility"], responses=BACKEND_ERRORS)
    async def assets_images(self) -> dict:
        """The original prototype's listing of portraits (same data as /api/v1/avatars)."""
        return {"images": [a["id"] for a in await _call(self.renderer.to_async.list_avatars)]}

    @app.get("/api/v1/assets/voice-samples", tags=["compatibility"], responses=BACKEND_ERRORS)
    async def assets_voices(self) -> dict:
        return {"voice_samples": [v["id"] for v in await _call(self.tts.to_async.voices)]}

    @app.get("/api/v1/personas", tags=["conversation"])
    async def personas(self) -> dict:
        """Who the avatar can be in a conversation, and whether the LLM and speech recognition are set up."""
        c = self.conversations
        personas = [p.model_dump(exclude={"system_prompt"}) for p in c.personas.values()]
        asr = (await _call(self.tts.to_async.info)).get("asr")
        ready = {"llm": c.client is not None, "asr": isinstance(asr, dict)}
        return {"personas": personas, "ready": ready, "hints": {"llm": c.client_error, "asr": asr}}

    @app.post("/api/v1/transcribe", tags=["conversation"], responses=error_responses(400, 413, 502, 503))
    async def transcribe(
        self,
        audio: UploadFile = File(**UPLOAD, description="wav, flac, ogg, mp3, or what browsers record (webm, mp4)"),
        language: str | None = Form(None, pattern=LANGUAGE_PATTERN, max_length=12),
    ) -> dict:
        """Speech to text with Whisper (its weights imported by scripts/import_models.py whisper): the text, the
        language heard (our codes: en, es, zh-cn...) and timed segments."""
        return await self._transcribe(await _read_upload(audio, "audio"), language)

    async def _transcribe(self, data: bytes, language: str | None, candidates: list[str] | None = None) -> dict:
        result = await _call(self.tts.to_async.transcribe, base64.b64encode(data).decode(), language, candidates)
        _check(result)
        return result["transcript"]

    @app.post("/api/v1/chat", tags=["conversation"], response_class=StreamingResponse, responses=EVENT_RESPONSES)
    async def chat(self, body: ChatRequest) -> StreamingResponse:
        """The persona's reply as server-sent events while the LLM writes it: `session`, `delta` (tokens),
        `sentence` (each speakable piece), `done` (the whole reply) or `error`. The first sentence is made before
        answering, so a missing or failing LLM is a JSON error."""
        c = self.conversations
        session, conversation, persona = c.session(body.session, body.persona)
        turn = c.turns.new(session)
        turn.emit("session", session=session, persona=persona.id)
        reply: list[str] = []
        language = persona.reply_language(body.language)
        pieces, stats = c.reply(
            conversation, body.text, language, on_delta=lambda d: reply.append(d) or turn.emit("delta", text=d)
        )
        first = await anext(pieces)

        async def rest() -> None:
            try:
                turn.emit("sentence", text=first)
                async for piece in pieces:
                    turn.emit("sentence", text=piece)
                turn.emit("done", reply="".join(reply).strip(), language=language, llm=asdict(stats))
            except Exception as exc:  # noqa: BLE001  (the client hears it as an event)
                turn.emit("error", **_error_body(exc))

        task = asyncio.create_task(rest())
        return StreamingResponse(_sse(turn.follow(), task), media_type="text/event-stream", headers=NO_STORE)

    @app.post("/api/v1/conversation", tags=["conversation"], response_class=StreamingResponse,
              responses=_streamed("video/mp4") | error_responses(413, 504))  # fmt: skip
    async def conversation(
        self,
        audio: UploadFile | None = File(None, description="what the user said (wav, webm...); or send `text`"),
        text: str | None = Form(None, min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN),
        persona: str | None = Form(None, pattern=ID_PATTERN),
        session: str | None = Form(None, pattern=SESSION_PATTERN),
        language: str | None = Form(None, pattern=LANGUAGE_PATTERN, max_length=12),
        size: int | None = Form(None, ge=128, le=1024, multiple_of=2),
        fps: float | None = Form(None, ge=10, le=60),
        seed: int = Form(0, ge=0, le=2**32 - 1),
    ) -> StreamingResponse:
        """One turn: the user's speech (or text) in, the persona's answer out as a live fMP4, its first fragment
        after the reply's first sentence. Headers: `x-session` (send it back to continue), `x-turn` (follow
        GET /api/v1/conversation/{turn}/events for the words), `x-transcript` (percent-encoded), `x-language`,
        `x-timing` (ms: asr, llm_first_token, first_sentence, first_fragment)."""
        t0, c = time.perf_counter(), self.conversations
        if (audio is None) == (text is None):
            raise InvalidInput("send either `audio` or `text`", allowed=["audio", "text"], field="audio")
        session, conv, who = c.session(session, persona)
        heard, timing = {"text": text, "language": language, "asr_ms": 0.0}, {}
        if audio is not None:
            data = await _read_upload(audio, "audio")
            heard = await self._transcribe(data, language, None if language else who.languages)
            if not any(ch.isalnum() for ch in heard["text"]):
                raise InvalidInput("no speech was recognised in the audio", field="audio")
        timing["asr"] = heard["asr_ms"]
        reply_language = who.reply_language(heard["language"])
        turn = c.turns.new(session)
        turn.emit("transcription", text=heard["text"], language=heard["language"], asr_ms=heard["asr_ms"])
        said: list[str] = []
        pieces, stats = c.reply(
            conv, heard["text"], reply_language, on_delta=lambda d: said.append(d) or turn.emit("delta", text=d)
        )
        body = GenerateRequest(text="conversation", language=reply_language, avatar=who.avatar, voice=who.voice,
                               size=size, fps=fps, seed=seed)  # fmt: skip

        async def timed(pieces: AsyncIterator[str]) -> AsyncIterator[str]:
            async for piece in pieces:  # the LLM has written a whole sentence
                timing.setdefault("first_sentence", (time.perf_counter() - t0) * 1000)
                yield piece

        def on_piece(piece: str, at_s: float) -> None:
            turn.emit("sentence", text=piece, at_s=round(at_s, 3))

        stream = self._stream(body, timed(pieces), on_piece)
        try:
            first = await anext(stream)
        except Exception as exc:
            turn.emit("error", **_error_body(exc))
            raise
        timing |= {"llm_first_token": stats.first_token_ms, "first_fragment": (time.perf_counter() - t0) * 1000}

        async def video() -> AsyncIterator[bytes]:
            try:
                yield first
                async for data in stream:
                    yield data
            except BaseException as exc:
                turn.emit("error", **_error_body(exc))
                raise
            turn.emit("done", reply="".join(said).strip(), language=reply_language, timing=timing, llm=asdict(stats))

        headers = NO_STORE | {
            "x-session": session, "x-turn": turn.id, "x-language": reply_language,
            "x-transcript": quote(heard["text"]), "x-timing": _timing(timing),
        }  # fmt: skip
        return StreamingResponse(video(), media_type="video/mp4", headers=headers)

    @app.get("/api/v1/conversation/{turn}/events", tags=["conversation"], response_class=StreamingResponse,
             responses=EVENT_RESPONSES)  # fmt: skip
    async def conversation_events(self, turn: str = PathParam(pattern=SESSION_PATTERN)) -> StreamingResponse:
        """A turn's events as server-sent events, from its start (none are missed by connecting late):
        `transcription`, `delta`, `sentence` (with `at_s`: where it starts in the video), `done` or `error`."""
        events = self.conversations.turns.get(turn)
        return StreamingResponse(_sse(events.follow()), media_type="text/event-stream", headers=NO_STORE)

    @app.get("/health", tags=["health"], responses=HEALTH_RESPONSES)
    async def health(self) -> JSONResponse:
        """The original prototype's health shape: status, mode, device, models_loaded (+ engines), and which
        dependency is down when one is. Answers within ~PROBE_S seconds whatever the dependencies do."""
        infos = await self._probe()
        down = {name: info for name, info in infos.items() if isinstance(info, str)}
        deps = {name: "down: " + info if name in down else "ready" for name, info in infos.items()}
        if down:
            body = {"status": "initializing", "mode": _mode(), "models_loaded": False, "dependencies": deps}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        tts, avatar = infos["tts"], infos["avatar"]
        body = {"status": "healthy", "mode": _mode(), "device": avatar["device"], "models_loaded": True}
        body |= {
            "engines": {"tts": tts["engine"], "avatar": avatar["renderer"]},
            "models": {"tts": tts, "avatar": avatar},
            "dependencies": deps,
        }
        return JSONResponse(body | {"uptime_s": round(time.time() - self.started, 1)})

    async def __is_ready__(self) -> bool:
        """Ready when both dependencies answer within PROBE_S (BentoML's own probe would wait for a restarting
        worker for seconds, then report it ready)."""
        return not any(isinstance(info, str) for info in (await self._probe()).values())

    async def _probe(self) -> dict[str, dict | str]:
        """Each dependency's info, or why it is down (no answer within PROBE_S, or an error), asked at once."""

        async def ask(fn) -> dict | str:
            try:
                return await asyncio.wait_for(fn(), PROBE_S)
            except TimeoutError:
                return f"no answer within {PROBE_S:g} s"
            except Exception as exc:  # noqa: BLE001  (a down dependency is reported, not raised)
                return type(exc).__name__

        tts, avatar = await asyncio.gather(ask(self.tts.to_async.info), ask(self.renderer.to_async.info))
        for name, info in (("tts", tts), ("avatar", avatar)):  # what the probe saw, the breakers know
            if breaker := BREAKERS.all.get(name):
                (breaker.trip if isinstance(info, str) else breaker.reset)()
        return {"tts": tts, "avatar": avatar}


PROBE_S = 1.5  # how long health and readiness wait for a dependency
BREAKERS = Breakers()  # per dependency: refuse calls at once while it is down


async def _read_upload(upload: UploadFile, field: str) -> bytes:
    limit = int(SERVING.max_upload_mb * 1e6)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"upload is larger than {SERVING.max_upload_mb:g} MB", field=field)
    if not data:
        raise InvalidInput(
            f"the {field} upload is empty", allowed=f"1 byte to {SERVING.max_upload_mb:g} MB", field=field
        )
    return data


AvatarPipeline.add_asgi_middleware(OpenAIErrors)  # outermost: every error under /v1/ in OpenAI's shape
AvatarPipeline.add_asgi_middleware(ApiKeys, keys=SERVING.api_keys)  # first: a request without a key takes no slot
AvatarPipeline.add_asgi_middleware(ConcurrencyLimit, limit=SERVING.max_concurrency)
AvatarPipeline.add_asgi_middleware(Contract)


class Pacer:
    """Shares the CPU between the live streams of a worker by need: a stream waits before asking for more work
    while it is far ahead of its own playback (`ahead_s`), or moderately ahead while another stream is close to
    running dry (just started, or behind). A lone stream runs at full speed (its complete MP4 is ready sooner).
    Its lead is the media sent minus the time since its first bytes (when its player started, about)."""

    URGENT_S = 0.6  # a stream with less buffered than this goes first

    def __init__(self, streams: set[Pacer], ahead_s: float):
        self.streams, self.ahead_s = streams, ahead_s
        self.t0: float | None = None
        self.media_s = 0.0

    def lead(self) -> float:
        return 0.0 if self.t0 is None else self.media_s - (time.perf_counter() - self.t0)

    def sent(self, data: bytes, live) -> bytes:
        if self.t0 is None and data:
            self.t0 = time.perf_counter()
        self.media_s = live.muxer.n_frames / live.fps
        return data

    async def wait(self) -> None:
        while self.t0 is not None:
            others = [p.lead() for p in self.streams if p is not self]
            lead = self.lead()
            limit = self.ahead_s if not any(o < self.URGENT_S for o in others) else 2 * self.URGENT_S
            if not others or lead <= limit:
                return
            await asyncio.sleep(min(lead - limit, 0.05))


def _pieces(text: str, max_chars: int) -> list[str]:
    """The pieces to speak; a text with nothing to say (no letter or digit: "...", "¤") is a 400."""
    from models.text import normalize_text, stream_pieces

    pieces = stream_pieces(normalize_text(text, max_chars))
    if not pieces:
        raise InvalidInput("text has nothing to say", allowed="a text with at least one letter or digit", field="text")
    return pieces


async def _sse(events: AsyncIterator[dict], task: asyncio.Task | None = None) -> AsyncIterator[bytes]:
    """Events as server-sent events (`data: {json}`); a producer task is cancelled when the client leaves."""
    try:
        async for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
    finally:
        if task is not None:
            task.cancel()


def _error_body(exc: BaseException) -> dict:
    if isinstance(exc, AvatarError):
        return {"status": exc.status} | exc.to_dict()
    return {"status": 500, "error": "stream_failed", "message": f"the answer failed: {type(exc).__name__}"}


def _timing(timing: dict) -> str:
    return ", ".join(f"{k}={v:.0f}" for k, v in timing.items() if v is not None)


async def _as_async(items) -> AsyncIterator:
    for item in items:
        yield item


async def _sse_events(audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """OpenAI's speech events: `speech.audio.delta` with base64 audio as it is made, then `speech.audio.done`."""
    async for data in audio:
        if data:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            yield f"data: {json.dumps(event)}\n\n".encode()
    yield b'data: {"type": "speech.audio.done"}\n\n'


async def _next_piece(speech: asyncio.Queue):
    """The next piece of speech from a producer task (None at the end); its failure is raised here."""
    piece = await speech.get()
    if isinstance(piece, BaseException):
        raise piece
    return piece


async def _dispatch(batched, single, req):
    """One item through a dependency: its batchable endpoint when batching is on, else the single one."""
    result = await _call(batched, [req]) if SERVING.batching else await _call(single, req)
    result = result[0] if SERVING.batching else result
    _check(result)
    return result


WEB_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _web_file(name: str) -> Response:
    """A file of services/web (names only: nothing outside that folder is reachable)."""
    from importlib import resources

    from models.errors import NotFound

    folder = resources.files("services") / "web"
    files = {f.name: f for f in folder.iterdir() if Path(f.name).suffix in WEB_TYPES}
    if name not in files:
        raise NotFound(f"no such page file {name!r}", allowed=sorted(files), field="name")
    return Response(files[name].read_bytes(), media_type=WEB_TYPES[Path(name).suffix],
                    headers={"cache-control": "no-cache"})  # fmt: skip


def _mode() -> str:
    return "remote" if (SERVING.tts_url or SERVING.render_url) else "local"


def _model(d: dict):
    from services.schemas import SynthesisResult

    return SynthesisResult.model_validate(d)


def _ranged(data: bytes, header: str | None, media_type: str) -> Response:
    """Serve bytes honouring the first range of `Range: bytes=a-b`, `a-` or `-n` (RFC 9110 14.1.2: a suffix longer
    than the file is the whole file). A Range header that is not valid syntax is ignored (200, the whole file, as
    RFC 9110 allows); a valid one that no byte satisfies is 416 with `Content-Range: bytes */size`."""
    import re

    size = len(data)
    base = {"accept-ranges": "bytes"}
    m = re.fullmatch(r"bytes=\s*(\d*)-(\d*)\s*(,.*)?", header or "")
    if not m or not (m[1] or m[2]) or (m[1] and m[2] and int(m[2]) < int(m[1])):
        return Response(data, media_type=media_type, headers=base)
    start, end = (int(m[1]), int(m[2]) if m[2] else size - 1) if m[1] else (max(0, size - int(m[2])), size - 1)
    if start >= size or (not m[1] and int(m[2]) == 0):
        body = {"error": "range_not_satisfiable", "message": f"no byte of the {size}-byte file is in {header!r}",
                "allowed": f"bytes=0-{size - 1}"}  # fmt: skip
        return JSONResponse(body, status_code=416, headers=base | {"content-range": f"bytes */{size}"})
    end = min(end, size - 1)
    headers = base | {"content-range": f"bytes {start}-{end}/{size}"}
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)
