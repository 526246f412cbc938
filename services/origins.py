"""Which web pages may open the sockets (settings serving.allowed_origins, or AVATAR_ALLOWED_ORIGINS=a,b).

A browser lets any page open a WebSocket to any host, and sends the page's `Origin` with the upgrade; it does not
apply CORS to sockets. Without a check, a page the user visits could drive a server on the user's laptop (open, the
default) and the paid LLM behind it: cross-site WebSocket hijacking. So an upgrade whose `Origin` is not allowed
is refused with 403 before the handshake. Allowed by default: the server's own origin (the `Origin` names the host
the request was sent to) and pages on localhost; `allowed_origins` adds more, exactly as a browser writes them
(`https://app.example.com`), or `*` for any. An upgrade without `Origin` (a non-browser client) passes, and still
needs a key where keys are set. Plain HTTP is left to CORS: a page cannot read the answers of another origin.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip()
    return None


def _netloc(host: str, scheme: str) -> str:
    """`host[:port]` lower-cased, the scheme's default port dropped (`x.run.app:443` and `x.run.app` are one)."""
    host = host.strip().lower()
    port = str(DEFAULT_PORTS.get(scheme, ""))
    return host[: -len(port) - 1] if port and host.endswith(":" + port) else host


def normalized(origin: str) -> str | None:
    """`scheme://host[:port]` lower-cased without a default port, or None when it is not a web origin (`null`,
    `file://`, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        hostname, _ = parts.hostname, parts.port  # .port refuses `host:3000.evil.example`
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    return f"{parts.scheme}://{_netloc(parts.netloc.rpartition('@')[2], parts.scheme)}"


def origin_allowed(origin: str, host: str | None, allowed: list[str]) -> bool:
    """Whether a page at `origin` may open a socket on the server that `host` (the request's Host, or the proxy's
    X-Forwarded-Host) names."""
    if "*" in allowed:
        return True
    page = normalized(origin)
    if page is None:
        return False
    scheme, netloc = page.split("://", 1)
    hostname = urlsplit(page).hostname or ""
    if hostname in LOCAL_HOSTS or hostname.endswith(".localhost"):
        return True
    if host and netloc == _netloc(host, scheme):
        return True
    return page in {normalized(a) for a in allowed}


class OriginCheck:
    """ASGI middleware: a WebSocket upgrade from a page whose origin is not allowed gets 403 with our JSON error
    (or a refused handshake, where the server cannot send a body), before any key is looked at or slot taken."""

    def __init__(self, app, allowed: list[str]):
        self.app = app
        self.allowed = list(allowed)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        origin = _header(headers, b"origin")
        host = _header(headers, b"x-forwarded-host") or _header(headers, b"host")
        if origin is None or origin_allowed(origin, host.split(",")[0] if host else None, self.allowed):
            return await self.app(scope, receive, send)
        body = {
            "error": "forbidden_origin",
            "message": f"a page at {origin[:200]} may not open this socket",
            "allowed": "the server's own origin, pages on localhost, and serving.allowed_origins "
            "(AVATAR_ALLOWED_ORIGINS)",
        }
        if "websocket.http.response" in scope.get("extensions", {}):
            payload = json.dumps(body).encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            return await send({"type": "websocket.http.response.body", "body": payload})
        await send({"type": "websocket.close", "code": 1008})  # the server answers the upgrade with 403
