"""The API's client of a unit served by Triton (services_triton/): what `bentoml.depends(..., url=)` gives for a
BentoML unit, over KServe v2 instead (services/kserve.py). AVATAR_TTS_URL / AVATAR_RENDER_URL = triton://host:port.

`dependency.to_async.<method>` has the same names, arguments and results as the BentoML client's, so the routes,
the streams and the breakers (services/backends.py) do not know which runtime answers. Failures look like
BentoML's client's: a refused connection raises aiohttp's own error (the breaker trips, 503 at once), Triton's
refusals carry `error_code` (503: not ready or overloaded; 500: the model failed on the request -> 502).
"""

from __future__ import annotations

import asyncio
import json
from functools import partial

import aiohttp
import numpy as np

from models.settings import load_settings
from services.kserve import (
    BATCHED,
    CONTROL,
    CONTROL_METHODS,
    UNITS,
    from_columns,
    infer_body,
    parse_response,
    to_columns,
)

SCHEME = "triton://"


class TritonError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"Triton answered {status}: {message}")
        self.error_code = 503 if status in (429, 503) or "not ready" in message or "unavailable" in message else 500


def is_triton(url: str | None) -> bool:
    return bool(url) and url.startswith(SCHEME)


class _Methods:
    """The async methods, as instance attributes (the breakers find a dependency's methods in `__dict__`)."""


class TritonDependency:
    def __init__(self, url: str, unit: str) -> None:
        self.base = "http://" + url.removeprefix(SCHEME).rstrip("/")
        self.unit = unit
        self._session: aiohttp.ClientSession | None = None
        self.to_async = _Methods()
        for model in UNITS[unit]:
            method = BATCHED[model][2]
            setattr(self.to_async, method, partial(self._batch, model))
            setattr(self.to_async, f"{method}_one", partial(self._single, model))
        for method in CONTROL_METHODS[unit]:
            setattr(self.to_async, method, partial(self._control, method))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed or self._session._loop is not asyncio.get_running_loop():
            timeout = aiohttp.ClientTimeout(total=load_settings().serving.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def infer(self, model: str, columns: dict[str, np.ndarray], outputs: list[str], schema=None) -> dict:
        body, head = infer_body(columns, schema, outputs)
        headers = {"Inference-Header-Content-Length": str(head), "Content-Type": "application/octet-stream"}
        async with self._client().post(f"{self.base}/v2/models/{model}/infer", data=body, headers=headers) as r:
            data = await r.read()
            if r.status != 200:
                raise TritonError(r.status, _message(data))
            length = r.headers.get("Inference-Header-Content-Length")
            return parse_response(data, int(length) if length else None)

    async def _batch(self, model: str, items: list) -> list:
        request_model, result_model, _ = BATCHED[model]
        items = [i if isinstance(i, request_model) else request_model.model_validate(i) for i in items]
        out = await self.infer(model, to_columns(request_model, items), list(result_model.model_fields),
                               request_model)  # fmt: skip
        return from_columns(result_model, out)

    async def _single(self, model: str, item):
        return (await self._batch(model, [item]))[0]

    async def _control(self, method: str, *args):
        args = [a.model_dump(mode="json") if hasattr(a, "model_dump") else a for a in args]
        columns = {name: _bytes(value) for name, value in (("method", method), ("args", json.dumps(args)))}
        out = await self.infer(CONTROL[self.unit], columns, ["result"])
        return json.loads(out["result"].reshape(-1)[0])


def _bytes(value: str) -> np.ndarray:
    arr = np.empty(1, dtype=object)
    arr[0] = value.encode()
    return arr


def _message(data: bytes) -> str:
    try:
        return json.loads(data).get("error", "")
    except ValueError:
        return data[:200].decode(errors="replace")
