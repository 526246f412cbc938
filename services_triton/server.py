"""The runners bound as Triton models through PyTriton, and the command that serves them.

Each unit's batched work is one model per runner method (`tts`; `render`, `render_chunk`), batched by Triton's
dynamic batcher with the BentoML services' batch limits; whatever else a unit answers (voices, avatars, alignment,
voice activity, recognition, info) goes through its `*_control` model: a method name and JSON arguments in, JSON
out, two instances so a probe never waits behind a long call.

    python -m services_triton --units tts avatar --http-port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
from collections.abc import Callable

import numpy as np

from models.settings import load_settings
from services.kserve import BATCHED, CONTROL, CONTROL_METHODS, SCALARS, UNITS, datatype, from_columns, to_columns
from services.schemas import AlignRequest

DTYPES = {"BYTES": bytes, **{kind: np.dtype(code).type for kind, code in SCALARS.values()}}
# batches in flight per model. Two (one batch's encoding overlapping the next one's rendering, as BentoML's unit
# runs batches on a thread pool) measured no better on 2 cores: c16 0.75x BentoML's against 0.79-0.91x with one,
# in smaller batches (tts 1.7, render 2.4 against 1.8-1.9, 2.7-2.9). On a GPU node, measure before raising it.
INSTANCES = 1
CONTROL_ARGS = {"align": AlignRequest}  # control methods whose first argument is a request model


def tensors(model) -> list:
    from pytriton.model_config import Tensor

    return [Tensor(name=name, dtype=DTYPES[datatype(model, name)], shape=(1,)) for name in model.model_fields]


def batched_infer(runner, request_model, result_model, method: str) -> Callable:
    """Triton's requests (each one or more rows) -> one call of the runner's batch method -> their responses."""

    def infer(requests: list) -> list[dict]:
        items, counts = [], []
        for request in requests:
            rows = from_columns(request_model, {name: request[name] for name in request})
            items.extend(rows)
            counts.append(len(rows))
        results, out, at = getattr(runner, method)(items), [], 0
        for n in counts:
            out.append(to_columns(result_model, results[at : at + n]))
            at += n
        return out

    return infer


def control_infer(runner, unit: str) -> Callable:
    def infer(requests: list) -> list[dict]:
        out = []
        for request in requests:
            method = request["method"].reshape(-1)[0].decode()
            if method not in CONTROL_METHODS[unit]:  # never any other attribute of the runner
                raise ValueError(f"unknown method {method!r} (allowed: {', '.join(CONTROL_METHODS[unit])})")
            args = json.loads(request["args"].reshape(-1)[0])
            if method in CONTROL_ARGS:
                args[0] = CONTROL_ARGS[method].model_validate(args[0])
            result = getattr(runner, method)(*args)
            out.append({"result": np.array([json.dumps(result).encode()], dtype=object)})
        return out

    return infer


def bind(triton, unit: str, runner) -> None:
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    serving = load_settings().serving
    limit = serving.tts_max_batch_size if unit == "tts" else serving.render_max_batch_size
    config = ModelConfig(max_batch_size=limit, batcher=DynamicBatcher(serving.triton_queue_delay_us))
    for name in UNITS[unit]:
        request_model, result_model, method = BATCHED[name]
        infer = batched_infer(runner, request_model, result_model, method)
        instances = [infer] * INSTANCES
        triton.bind(name, instances, tensors(request_model), tensors(result_model), config=config, strict=False)
    control = [Tensor(name="method", dtype=bytes, shape=(1,)), Tensor(name="args", dtype=bytes, shape=(1,))]
    result = [Tensor(name="result", dtype=bytes, shape=(1,))]
    triton.bind(CONTROL[unit], [control_infer(runner, unit)] * 2, control, result, config=ModelConfig(batching=False))


def runner_of(unit: str):
    if unit == "tts":
        from services.runner_speech import SpeechRunner

        return SpeechRunner()
    from services.runner_render import RenderRunner

    return RenderRunner()


def main(argv: list[str] | None = None) -> int:
    from pytriton.triton import Triton, TritonConfig

    ap = argparse.ArgumentParser(prog="python -m services_triton", description=__doc__.splitlines()[0])
    ap.add_argument("--units", nargs="+", choices=sorted(UNITS), default=sorted(UNITS))
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--address", default="0.0.0.0")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runners = {unit: runner_of(unit) for unit in args.units}  # load the models before Triton says ready
    config = TritonConfig(http_address=args.address, http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port, allow_gpu_metrics=False)  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with Triton(config=config) as triton:
        for unit, runner in runners.items():
            bind(triton, unit, runner)
        with contextlib.suppress(KeyboardInterrupt):
            triton.serve()
    return 0
