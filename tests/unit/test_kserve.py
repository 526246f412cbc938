"""The runners' requests and results as KServe v2 tensors (services/kserve.py): what Triton and the API exchange."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from services.kserve import (
    BATCHED,
    datatype,
    decode_bytes,
    encode_bytes,
    from_columns,
    infer_body,
    parse_response,
    to_columns,
)
from services.schemas import ChunkRequest, ChunkResult, Failure, RenderRequest, SynthesisRequest, SynthesisResult
from services.triton_client import TritonError, is_triton

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _pcm(*samples: int) -> str:
    return base64.b64encode(np.array(samples, "<i2").tobytes()).decode()


def test_every_runner_model_round_trips_through_its_tensors():
    items = {
        SynthesisRequest: [SynthesisRequest(text="Hé there", voice=None, speed=1.5, urgent=True), SynthesisRequest()],
        SynthesisResult: [SynthesisResult(audio=_pcm(5, -3, 0, 0), sample_rate=22050, phonemes=[("a", 0.0, 0.1)],
                                          tts_ms=3.5, mouth="phonemes"),
                          SynthesisResult(error=Failure(status=404, body={"error": "not_found"}))],
        RenderRequest: [RenderRequest(audio=_pcm(0, 1, 0), sample_rate=16000, fps=None, size=256, seed=2**32 - 1)],
        ChunkRequest: [ChunkRequest(poses=[[0.1] * 8] * 3, start=12, fps=25.0)],
        ChunkResult: [ChunkResult(chunk={"data": "AAA=", "sizes": [2], "pts": [0], "keyframe": [True]}, render_ms=1)],
    }  # fmt: skip
    for model, values in items.items():
        columns = to_columns(model, values)
        assert all(c.shape == (len(values), 1) for c in columns.values())
        assert from_columns(model, columns) == values


def test_scalars_travel_typed_and_media_as_raw_bytes_that_keep_trailing_zeros():
    assert datatype(SynthesisRequest, "speed") == "FP64" and datatype(SynthesisRequest, "urgent") == "BOOL"
    assert datatype(RenderRequest, "sample_rate") == "INT64" and datatype(RenderRequest, "fps") == "BYTES"
    columns = to_columns(RenderRequest, [RenderRequest(audio=_pcm(7, 0, 0), sample_rate=8000)])
    raw = columns["audio"][0, 0]
    assert raw[:-1] == np.array([7, 0, 0], "<i2").tobytes()  # no base64 on the wire
    # numpy's fixed-width bytes (what Triton's Python side may hand over) drop trailing NULs: the end byte keeps them
    narrowed = columns | {"audio": np.array([[raw]], dtype=np.bytes_)}
    assert from_columns(RenderRequest, narrowed)[0].audio == _pcm(7, 0, 0)


def test_a_request_body_and_a_binary_response_parse_back():
    columns = to_columns(SynthesisRequest, [SynthesisRequest(text="one"), SynthesisRequest(text="two")])
    body, head = infer_body(columns, SynthesisRequest, ["audio"])
    header = json.loads(body[:head])
    assert [i["name"] for i in header["inputs"]] == list(SynthesisRequest.model_fields)
    assert sum(i["parameters"]["binary_data_size"] for i in header["inputs"]) == len(body) - head
    texts = np.array([[b"one"], [b"\x00two\x00"]], dtype=object)
    blob, rates = encode_bytes(texts), np.array([[22050], [16000]], "<i8")
    out = {"outputs": [
        {"name": "text", "datatype": "BYTES", "shape": [2, 1], "parameters": {"binary_data_size": len(blob)}},
        {"name": "rate", "datatype": "INT64", "shape": [2, 1], "parameters": {"binary_data_size": 16}},
    ]}  # fmt: skip
    head_bytes = json.dumps(out).encode()
    parsed = parse_response(head_bytes + blob + rates.tobytes(), len(head_bytes))
    assert parsed["text"].tolist() == texts.tolist() and parsed["rate"].tolist() == [[22050], [16000]]
    assert decode_bytes(encode_bytes(np.array([b""], dtype=object)), [1]).tolist() == [b""]
    as_json = json.dumps({"outputs": [{"name": "result", "datatype": "BYTES", "shape": [1], "data": ["{}"]}]})
    assert parse_response(as_json.encode(), None)["result"].tolist() == [b"{}"]


def test_triton_urls_and_refusals():
    assert is_triton("triton://host:8000") and not is_triton("http://host:3000") and not is_triton(None)
    assert TritonError(503, "unavailable").error_code == 503  # -> 503 with Retry-After
    assert TritonError(400, "Model 'tts' is not ready").error_code == 503
    assert TritonError(400, "Failed to process the request").error_code == 500  # the model failed -> 502
    assert set(BATCHED) == {"tts", "render", "render_chunk"}


def test_a_missing_triton_environment_is_said_in_one_line(tmp_path):
    from services.launcher import triton_missing

    reason = triton_missing(tmp_path)
    assert reason.startswith("no .venv-triton") and "\n" not in reason


def test_the_shared_runners_and_the_triton_adapter_never_import_bentoml():
    shared = ("runner_speech.py", "runner_render.py", "kserve.py", "common.py", "schemas.py")
    files = [ROOT / "services" / n for n in shared] + sorted((ROOT / "services_triton").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "bentoml" for n in names), path
