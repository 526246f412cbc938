"""The public FastAPI app: its error mapping (every error is our JSON shape), the ASGI middleware that guards it,
and the OpenAPI descriptions the route groups share. The routes live in services/routes_*.py; services/pipeline.py
mounts the app on the BentoML service and adds the middleware.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import AvatarError
from models.settings import load_settings
from models.version import VERSION
from services.auth import with_security
from services.common import rewrite_response
from services.schemas import ID_PATTERN, LANGUAGE_PATTERN, TEXT_PATTERN, VIDEO_NAME_PATTERN, error_responses

SERVING = load_settings().serving
DESCRIPTION = """Text or any voice in, a talking-avatar video out: whole MP4s, fragmented MP4 streams, and two
WebSockets (`/api/v1/live`, hands-free conversation; `/api/v1/animate/live`, a client's PCM drives the face), whose
messages the docs describes.

**Keys** (when the server has any): `Authorization: Bearer KEY` or `api-key: KEY` on every data route. A browser's
WebSocket cannot set headers, so the sockets also take the key as subprotocols: offer `avatar` and
`key.<the key in base64url, unpadded>`; the server accepts with `avatar`.

**Origins**: a WebSocket upgrade from a web page whose `Origin` is neither the server's own, nor on localhost, nor
in `serving.allowed_origins` is refused with 403 (`forbidden_origin`) before the handshake."""
app = FastAPI(title="realtime-avatar API", description=DESCRIPTION, version=VERSION)

NO_STORE = {"cache-control": "no-store"}
SPEAK_ERRORS = error_responses(400, 404, 502, 503)  # text in, media out: bad input, unknown avatar/voice, backends
BACKEND_ERRORS = error_responses(502, 503)  # routes that only ask a dependency
EVENT_RESPONSES = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events: data: {\"type\": ...}"},
} | error_responses(400, 404, 502, 503, 504)  # fmt: skip
UPLOAD = {"json_schema_extra": {"minLength": 1}}  # an empty upload is refused (400)


def streamed(media_type: str) -> dict:
    """OpenAPI description of a body sent while it is made (bad input is refused before it starts)."""
    ok = {200: {"content": {media_type: {}}, "description": f"{media_type}, sent while it is made (chunked)"}}
    return ok | SPEAK_ERRORS


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


class ConcurrencyLimit:
    """429 with Retry-After and a JSON body once `limit` requests are in flight (BentoML's own limiter answers
    without Retry-After and outside our error shape), or once `audio_limit` requests that decode a long audio
    upload are (each holds up to minutes of samples while it runs: docs, Memory). Health, metrics and docs
    routes are never limited."""

    SKIP = ("/health", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/demo")
    AUDIO = ("/api/v1/animate", "/v1/audio/transcriptions")  # the routes that decode long audio uploads

    def __init__(self, app, limit: int, audio_limit: int | None = None):
        self.app, self.limit, self.audio_limit = app, limit, audio_limit or limit
        self.semaphore = asyncio.Semaphore(limit)
        self.audio = asyncio.Semaphore(self.audio_limit)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in self.SKIP:
            return await self.app(scope, receive, send)
        audio = scope["path"].startswith(self.AUDIO) and scope.get("method") == "POST"
        if self.semaphore.locked() or (audio and self.audio.locked()):
            allowed = f"at most {self.limit} concurrent requests per worker"
            if audio and not self.semaphore.locked():
                allowed = f"at most {self.audio_limit} concurrent audio uploads (audio_in.max_concurrent)"
            body = {"error": "overloaded", "message": "too many requests in flight; retry shortly", "allowed": allowed}
            return await JSONResponse(body, status_code=429, headers={"Retry-After": "2"})(scope, receive, send)
        async with self.semaphore:
            if not audio:
                return await self.app(scope, receive, send)
            async with self.audio:
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


def add_middleware(service) -> None:
    """The middleware around the mounted app, outermost first."""
    from services.auth import ApiKeys
    from services.openai_errors import OpenAIErrors
    from services.origins import OriginCheck

    service.add_asgi_middleware(OpenAIErrors)  # outermost: every error under /v1/ in OpenAI's shape
    service.add_asgi_middleware(OriginCheck, allowed=SERVING.allowed_origins)  # a foreign page's socket: 403
    service.add_asgi_middleware(ApiKeys, keys=SERVING.api_keys)  # first: a request without a key takes no slot
    audio_limit = load_settings().audio_in.max_concurrent
    service.add_asgi_middleware(ConcurrencyLimit, limit=SERVING.max_concurrency, audio_limit=audio_limit)
    service.add_asgi_middleware(Contract)
