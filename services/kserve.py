"""The runners over KServe v2 (Triton's HTTP protocol): how a request or result model of services/schemas.py travels
as tensors, and the API's client of a Triton server (AVATAR_TTS_URL / AVATAR_RENDER_URL = triton://host:port).

One tensor per field of the pydantic model, one row per item: `str` -> BYTES (UTF-8), `int` -> INT64, `float` ->
FP64, `bool` -> BOOL, the base64 media fields (`audio`, `video`) -> BYTES of the raw bytes, anything else (optional
values, lists, the encoded chunk, a per-item failure) -> BYTES of its JSON. Requests and responses use the binary
tensor extension (`binary_data_size`), so media crosses as raw bytes, not base64 in JSON. Both sides use this
module: services_triton/ on the server, TritonDependency in the API. No BentoML here.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel

from services.schemas import (
    ChunkRequest,
    ChunkResult,
    RenderRequest,
    RenderResult,
    SynthesisRequest,
    SynthesisResult,
)

RAW = frozenset({"audio", "video"})  # base64 in the pydantic model, raw bytes on the wire...
END = b"\xff"  # ...plus one byte: numpy's fixed-width bytes (which Triton's Python side may use) drop trailing NULs
SCALARS = {int: ("INT64", "<i8"), float: ("FP64", "<f8"), bool: ("BOOL", "?")}
# Triton model -> (request model, result model, the runner's batch method); what is not batched goes through
# the unit's `control` model (a method name and JSON arguments in, JSON out)
BATCHED = {
    "tts": (SynthesisRequest, SynthesisResult, "synthesize"),
    "render": (RenderRequest, RenderResult, "render"),
    "render_chunk": (ChunkRequest, ChunkResult, "render_chunk"),
}
CONTROL = {"tts": "tts_control", "avatar": "avatar_control"}
# per unit: its batched Triton models, and the only runner methods its control model calls
UNITS = {"tts": ("tts",), "avatar": ("render", "render_chunk")}
CONTROL_METHODS = {
    "tts": ("info", "voices", "add_voice", "delete_voice", "transcribe", "align", "vad"),
    "avatar": ("info", "add_avatar", "list_avatars", "delete_avatar"),
}


def datatype(model: type[BaseModel], name: str) -> str:
    annotation = model.model_fields[name].annotation
    return SCALARS[annotation][0] if name not in RAW and annotation in SCALARS else "BYTES"


def _to_bytes(model: type[BaseModel], name: str, value: Any) -> bytes:
    if name in RAW:
        return base64.b64decode(value or "") + END
    if model.model_fields[name].annotation is str:
        return value.encode()
    return json.dumps(value).encode()


def _from_bytes(model: type[BaseModel], name: str, raw: bytes) -> Any:
    if name in RAW:
        return base64.b64encode(raw[:-1]).decode()
    if model.model_fields[name].annotation is str:
        return raw.decode()
    return json.loads(raw)


def to_columns(model: type[BaseModel], items: list[BaseModel]) -> dict[str, np.ndarray]:
    """Items of a model -> one [n, 1] array per field."""
    rows = [item.model_dump(mode="json") for item in items]
    columns = {}
    for name in model.model_fields:
        kind = datatype(model, name)
        if kind == "BYTES":
            values = np.empty((len(rows), 1), dtype=object)
            values[:, 0] = [_to_bytes(model, name, r[name]) for r in rows]
        else:
            values = np.array([[r[name]] for r in rows], dtype=SCALARS[model.model_fields[name].annotation][1])
        columns[name] = values
    return columns


def from_columns(model: type[BaseModel], columns: dict[str, np.ndarray]) -> list[BaseModel]:
    """One [n, 1] array per field -> the items (a missing field takes its default; the model validates them)."""
    n = len(next(iter(columns.values())))
    rows: list[dict] = [{} for _ in range(n)]
    for name, values in columns.items():
        if name not in model.model_fields:
            continue
        for row, value in zip(rows, values.reshape(n, -1)[:, 0], strict=True):
            row[name] = _from_bytes(model, name, value) if datatype(model, name) == "BYTES" else value.item()
    return [model.model_validate(row) for row in rows]


def encode_bytes(values: np.ndarray) -> bytes:
    """A BYTES tensor in KServe v2's binary form: each element's length (uint32, little-endian), then it."""
    return b"".join(struct.pack("<I", len(v)) + v for v in values.reshape(-1))


def decode_bytes(data: bytes, shape: list[int]) -> np.ndarray:
    out, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from("<I", data, at)
        out.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr.reshape(shape)


def infer_body(columns: dict[str, np.ndarray], model: type[BaseModel], outputs: list[str]) -> tuple[bytes, int]:
    """An inference request with every tensor in binary form: (body, the JSON header's length)."""
    header, blobs = {"inputs": [], "outputs": [{"name": o, "parameters": {"binary_data": True}} for o in outputs]}, []
    for name, values in columns.items():
        kind = datatype(model, name) if model else "BYTES"
        blob = encode_bytes(values) if kind == "BYTES" else values.tobytes()
        header["inputs"].append({"name": name, "shape": list(values.shape), "datatype": kind,
                                 "parameters": {"binary_data_size": len(blob)}})  # fmt: skip
        blobs.append(blob)
    head = json.dumps(header).encode()
    return head + b"".join(blobs), len(head)


def parse_response(body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
    """An inference response (binary outputs after the JSON header, or all JSON) -> arrays by output name."""
    head = json.loads(body[:header_length] if header_length else body)
    at, out = header_length or 0, {}
    for o in head["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = o["data"]
            out[o["name"]] = np.array([d.encode() if isinstance(d, str) else d for d in data], dtype=object)
            out[o["name"]] = out[o["name"]].reshape(o["shape"])
            continue
        blob = body[at : at + size]
        at += size
        if o["datatype"] == "BYTES":
            out[o["name"]] = decode_bytes(blob, o["shape"])
        else:
            dtype = {"INT64": "<i8", "FP64": "<f8", "BOOL": "?", "INT32": "<i4", "FP32": "<f4"}[o["datatype"]]
            out[o["name"]] = np.frombuffer(blob, dtype).reshape(o["shape"])
    return out
