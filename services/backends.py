"""How routes reach the running service and how its dependencies (TTSService, AvatarService) are called.

Routes take `svc: Service`, a FastAPI dependency that resolves the running AvatarPipeline (BentoML's own
`get_current_service`, which is also how BentoML binds `self` in routes written as methods). Every call to a
dependency goes through `call`: down or overloaded is 503 with Retry-After, a crash inside it is 502, an item that
failed in a batch is re-raised as its own HTTP error, and a dependency found down is refused at once while a
bounded probe says so (services/breaker.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import bentoml
from fastapi import Depends, UploadFile

from models.errors import AvatarError, EngineUnavailable, InvalidInput, PayloadTooLarge
from models.settings import load_settings
from services.breaker import CONNECTION_ERRORS, Breakers, DependencyDown

SERVING = load_settings().serving
Service = Annotated[Any, Depends(bentoml.get_current_service)]  # the running AvatarPipeline
PROBE_S = 1.5  # how long health and readiness wait for a dependency
BREAKERS = Breakers()  # per dependency: refuse calls at once while it is down


class Unavailable(EngineUnavailable):
    code = "dependency_unavailable"


class BackendFailed(AvatarError):
    status = 502
    code = "backend_error"


class _Passthrough(AvatarError):
    def __init__(self, status: int, body: dict):
        super().__init__(body.get("message", "error"))
        self.status, self.body = status, body

    def to_dict(self) -> dict:
        return self.body


def check(result) -> None:
    """Re-raise a dependency's per-item failure as the same HTTP error."""
    err = result.error if hasattr(result, "error") else result.get("error")
    if err:
        err = err if isinstance(err, dict) else err.model_dump()
        raise _Passthrough(err["status"], err["body"])


async def call(fn, *args):
    """Call a dependency: down or overloaded -> 503 with Retry-After; a crash inside it -> 502.

    Our dependency calls are pure functions of their input, so a connection the other side dropped before
    answering (a keep-alive connection closed as it was reused) is retried once, if a quick probe finds the
    dependency answering; a dependency found down is refused at once until it answers again."""
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


async def dispatch(batched, single, req):
    """One item through a dependency: its batchable endpoint when batching is on, else the single one."""
    result = await call(batched, [req]) if SERVING.batching else await call(single, req)
    result = result[0] if SERVING.batching else result
    check(result)
    return result


async def probe(dependencies: dict[str, Any]) -> dict[str, dict | str]:
    """Each dependency's info, or why it is down (no answer within PROBE_S, or an error), asked at once; what the
    probe saw, the breakers know."""

    async def ask(fn) -> dict | str:
        try:
            return await asyncio.wait_for(fn(), PROBE_S)
        except TimeoutError:
            return f"no answer within {PROBE_S:g} s"
        except Exception as exc:  # noqa: BLE001  (a down dependency is reported, not raised)
            return type(exc).__name__

    names = list(dependencies)
    infos = await asyncio.gather(*(ask(dependencies[n].to_async.info) for n in names))
    for name, info in zip(names, infos, strict=True):
        if breaker := BREAKERS.all.get(name):
            (breaker.trip if isinstance(info, str) else breaker.reset)()
    return dict(zip(names, infos, strict=True))


async def read_upload(upload: UploadFile, field: str) -> bytes:
    """An uploaded file's bytes, refused when empty or over serving.max_upload_mb."""
    limit = int(SERVING.max_upload_mb * 1e6)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"upload is larger than {SERVING.max_upload_mb:g} MB", field=field)
    if not data:
        raise InvalidInput(
            f"the {field} upload is empty", allowed=f"1 byte to {SERVING.max_upload_mb:g} MB", field=field
        )
    return data
