"""Triton against BentoML as the runners' runtime, in one run on one machine: the same API (services/pipeline.py)
over the BentoML units (`bentoml serve .`, all in one) and over Triton (services_triton, AVATAR_TTS_URL /
AVATAR_RENDER_URL = triton://...). Per runtime: the first streamed fragment, the whole MP4's real-time factor, and
the throughput of 16 concurrent requests (seconds of video made per second), as ratios of Triton to BentoML; and
Piper alone on the same text, in-process, as the yardstick.

    .venv/bin/python scripts/bench_triton.py --readme docs     (make bench-triton)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench_serving import level
from bench_stream import http_stream
from readme_section import replace_section

from services.launcher import Server, TritonServer, triton_missing

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Hello there, it is good to see you again today."


def piper_alone(text: str, repeats: int) -> float:
    """ms of Piper alone on `text`, in-process (median)."""
    from models.tts import create_engine, synthesize

    engine = create_engine("piper")
    synthesize(engine, text, "en")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        synthesize(engine, text, "en")
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def whole_mp4(url: str, repeats: int) -> dict:
    """Median wall time of /api/v1/generate over the speech's duration, one request at a time."""
    import httpx

    rtf, ms = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        r = httpx.post(url + "/api/v1/generate", json={"text": TEXT}, timeout=300)
        r.raise_for_status()
        ms.append((time.perf_counter() - t) * 1000)
        rtf.append(ms[-1] / 1000 / r.json()["metadata"]["audio_duration_s"])
    return {"ms": statistics.median(ms), "rtf": statistics.median(rtf)}


def measure(url: str, repeats: int, concurrency: int) -> dict:
    http_stream(url, "Warm up.")
    ttff = statistics.median(http_stream(url, TEXT)["ttff_ms"] for _ in range(repeats))
    return {"ttff_ms": ttff, "whole": whole_mp4(url, repeats), "c": level(url, concurrency, concurrency * 2)}


def run(runtime: str, tmp: Path, repeats: int, concurrency: int) -> dict:
    env = {"AVATAR_DATA_DIR": str(tmp / f"data-{runtime}")}
    with ExitStack() as stack:
        if runtime == "triton":
            triton = stack.enter_context(TritonServer(env, tmp / "triton.log", cwd=ROOT))
            env |= {"AVATAR_TTS_URL": triton.triton_url, "AVATAR_RENDER_URL": triton.triton_url}
        api = stack.enter_context(Server("services.pipeline:AvatarPipeline", env, tmp / f"api-{runtime}.log",
                                         cwd=ROOT))  # fmt: skip
        out = measure(api.url, repeats, concurrency)
        if runtime == "triton":
            counts = triton.metrics()
            out["batch"] = {m: counts[("nv_inference_request_success", m)] / counts[("nv_inference_exec_count", m)]
                            for m in ("tts", "render") if counts.get(("nv_inference_exec_count", m))}  # fmt: skip
        return out


def markdown(res: dict, piper_ms: float, concurrency: int) -> str:
    b, t = res["bentoml"], res["triton"]
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    rows = [
        ("first streamed fragment (ms, median)", b["ttff_ms"], t["ttff_ms"], "{:.0f}"),
        ("whole MP4, one request (ms, median)", b["whole"]["ms"], t["whole"]["ms"], "{:.0f}"),
        ("whole MP4: real-time factor", b["whole"]["rtf"], t["whole"]["rtf"], "{:.3f}"),
        (f"c{concurrency}: seconds of video per second", b["c"]["throughput"], t["c"]["throughput"], "{:.2f}"),
        (f"c{concurrency}: p50 latency (s)", b["c"]["p50_s"], t["c"]["p50_s"], "{:.2f}"),
    ]
    lines = [f"Same API, same text, this machine ({machine}); Piper alone on the text: {piper_ms:.0f} ms.", "",
             "| | BentoML runners | Triton runners | Triton / BentoML |", "|---|---|---|---|"]  # fmt: skip
    for name, vb, vt, fmt in rows:
        lines.append(f"| {name} | {fmt.format(vb)} | {fmt.format(vt)} | {vt / vb:.2f}x |")
    lines.append(f"| first fragment / Piper alone | {b['ttff_ms'] / piper_ms:.2f} | {t['ttff_ms'] / piper_ms:.2f} | |")
    batch = ", ".join(f"{m} {v:.1f}" for m, v in t.get("batch", {}).items())
    lines += ["", f"Triton's mean batch over the run (requests / executions, its own counters): {batch}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--readme", type=Path, help="rewrite the triton section in this page, or in the docs folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args(argv)
    if missing := triton_missing(ROOT):
        print(f"bench_triton: {missing}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    piper_ms = piper_alone(TEXT, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        res = {rt: run(rt, Path(tmp), args.repeats, args.concurrency) for rt in ("bentoml", "triton")}
    (args.out / "triton.json").write_text(json.dumps({"piper_ms": piper_ms, **res}, indent=2))
    table = markdown(res, piper_ms, args.concurrency)
    print(table)
    if args.readme:
        replace_section(args.readme, "triton", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
