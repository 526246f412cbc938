"""Health (the original prototype's `/health`, beside BentoML's probes) and the demo page."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from models.settings import load_settings
from models.version import VERSION
from services.backends import Service

SERVING = load_settings().serving
router = APIRouter()
HEALTH_RESPONSES = {503: {"description": "a dependency is down (`dependencies` says which); Retry-After",
                          "content": {"application/json": {}}}}  # fmt: skip
WEB_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@router.get("/demo", tags=["demo"], response_class=HTMLResponse)
async def demo() -> Response:
    """The web page: type, press Speak, watch the avatar answer as it streams."""
    return _web_file("demo.html")


@router.get("/demo/{name}", tags=["demo"], include_in_schema=False)
async def demo_file(name: str) -> Response:
    return _web_file(name)


@router.get("/health", tags=["health"], responses=HEALTH_RESPONSES)
async def health(svc: Service) -> JSONResponse:
    """The original prototype's health shape: status, mode, device, models_loaded (+ engines), and which
    dependency is down when one is. Answers within ~PROBE_S seconds whatever the dependencies do."""
    infos = await svc.probe()
    down = {name: info for name, info in infos.items() if isinstance(info, str)}
    deps = {name: "down: " + info if name in down else "ready" for name, info in infos.items()}
    if down:
        body = {"status": "initializing", "mode": _mode(), "models_loaded": False, "dependencies": deps,
                "version": VERSION}  # fmt: skip
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    tts, avatar = infos["tts"], infos["avatar"]
    body = {"status": "healthy", "mode": _mode(), "device": avatar["device"], "models_loaded": True}
    body |= {
        "engines": {"tts": tts["engine"], "avatar": avatar["renderer"]},
        "models": {"tts": tts, "avatar": avatar},
        "dependencies": deps,
    }
    return JSONResponse(body | {"version": VERSION, "uptime_s": round(time.time() - svc.started, 1)})


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
