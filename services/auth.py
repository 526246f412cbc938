"""Optional API keys (settings serving.api_keys, or AVATAR_API_KEYS=key1,key2): when any is set, every data
route needs one, as `Authorization: Bearer KEY` (what the OpenAI SDKs send) or an `api-key: KEY` header.
Probes, metrics, the API documentation and the page itself stay open; the page asks for a key when it gets a 401.

A browser's WebSocket cannot set headers, so a socket may also carry its key in `Sec-WebSocket-Protocol`, as
Kubernetes' API server takes bearer tokens: offer the subprotocols `avatar` and `key.<the key in base64url,
unpadded>`; the server accepts with `avatar` (never echoing the key).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi.responses import JSONResponse

OPEN_PATHS = frozenset({"/", "/docs.json", "/health", "/healthz", "/livez", "/readyz", "/metrics", "/demo"})
OPEN_PREFIXES = ("/demo/", "/static_content/")  # the page's and Swagger UI's own files


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The keys a request carries: a Bearer token and the `api-key` header. Either may match, so behind Cloud Run
    IAM (whose identity token takes `Authorization`) the key goes in `api-key`."""
    found = []
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                found.append(token.strip())
        elif name == b"api-key" and value.strip():
            found.append(value.strip())
    return found


SUBPROTOCOL = "avatar"  # what a keyed browser socket offers beside its key, and what the server accepts with
KEY_PROTOCOL = "key."


def protocol_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Keys offered as `key.<base64url>` WebSocket subprotocols."""
    found = []
    for name, value in headers:
        if name != b"sec-websocket-protocol":
            continue
        for offer in value.decode("latin-1").split(","):
            offer = offer.strip()
            if offer.startswith(KEY_PROTOCOL) and len(offer) > len(KEY_PROTOCOL):
                token = offer[len(KEY_PROTOCOL) :]
                try:
                    found.append(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                except (binascii.Error, ValueError):
                    continue
    return found


def accepted_subprotocol(headers: list[tuple[bytes, bytes]]) -> str | None:
    """`avatar` when the client offered it (a browser fails a socket whose offers the server ignores)."""
    for name, value in headers:
        if name == b"sec-websocket-protocol" and SUBPROTOCOL in [o.strip() for o in value.decode("latin-1").split(",")]:
            return SUBPROTOCOL
    return None


def is_open(path: str, method: str) -> bool:
    return method == "OPTIONS" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class ApiKeys:
    """ASGI middleware: 401 with our JSON error and `WWW-Authenticate: Bearer` unless a configured key is presented.
    Keys are compared in constant time (each against every configured key, so timing says nothing either)."""

    def __init__(self, app, keys: list[str]):
        self.app = app
        self.keys = [k.encode() for k in keys if k]

    def accepts(self, presented: list[bytes]) -> bool:
        return sum(hmac.compare_digest(p, k) for p in presented for k in self.keys) > 0

    async def __call__(self, scope, receive, send) -> None:
        if not self.keys or scope["type"] not in ("http", "websocket") or is_open(scope["path"], scope.get("method")):
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        presented = presented_keys(headers) + (protocol_keys(headers) if scope["type"] == "websocket" else [])
        if self.accepts(presented):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":  # policy violation, before the handshake is accepted
            return await send({"type": "websocket.close", "code": 1008})
        wrong = bool(presented)
        body = {
            "error": "unauthorized",
            "message": "wrong API key" if wrong else "this server needs an API key",
            "allowed": "Authorization: Bearer <key> or an api-key: <key> header",
        }
        challenge = 'Bearer realm="realtime-avatar"' + (', error="invalid_token"' if wrong else "")
        response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)


def with_security(spec: dict, keys: list[str]) -> dict:
    """When keys are configured, the OpenAPI document declares them (Swagger UI's Authorize button), on every
    operation but the open ones."""
    if not keys:
        return spec
    schemes = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
    }
    spec.setdefault("components", {})["securitySchemes"] = schemes
    spec["security"] = [{"bearer": []}, {"apiKey": []}]
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and is_open(path, method.upper()):
                op["security"] = []
    return spec
