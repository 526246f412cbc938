"""Serving benchmark: real `bentoml serve`, concurrent clients, adaptive batching on vs off, in one run.

    python scripts/bench_serving.py [--levels 1 4 16] [--requests 2] [--readme docs]

For each mode and concurrency level it sends `requests x concurrency` generate calls (a ~2 s utterance each,
512x512, 25 fps) and reports throughput (seconds of video produced per wall second) and p50/p95 latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from readme_section import replace_section

from services.launcher import Server

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Hello there, it is good to see you again today."


def one(url: str) -> tuple[float, float]:
    t = time.perf_counter()
    r = httpx.post(url + "/api/v1/generate", json={"text": TEXT}, timeout=600)
    r.raise_for_status()
    return time.perf_counter() - t, r.json()["metadata"]["audio_duration_s"]


def level(url: str, concurrency: int, n: int) -> dict:
    one(url)  # warm
    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: one(url), range(n)))
    wall = time.perf_counter() - t
    lat = sorted(r[0] for r in results)
    return {
        "concurrency": concurrency,
        "requests": n,
        "throughput": sum(r[1] for r in results) / wall,
        "p50_s": statistics.median(lat),
        "p95_s": lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))],
    }


def batch_means(metrics: str) -> dict[str, float]:
    import re

    out = {}
    for svc in ("tts", "avatar"):
        s = re.search(rf'adaptive_batch_size_sum{{[^}}]*service_name="{svc}"[^}}]*}} ([0-9.e+]+)', metrics)
        c = re.search(rf'adaptive_batch_size_count{{[^}}]*service_name="{svc}"[^}}]*}} ([0-9.e+]+)', metrics)
        if s and c and float(c.group(1)):
            out[svc] = float(s.group(1)) / float(c.group(1))
    return out


def run_mode(batching: bool, levels: list[int], per: int, tmp: Path) -> dict:
    env = {"AVATAR_DATA_DIR": str(tmp / f"data-{batching}"), "AVATAR__SERVING__BATCHING": str(batching).lower()}
    with Server("services.pipeline:AvatarPipeline", env, tmp / f"serve-{batching}.log", cwd=ROOT) as server:
        rows = [level(server.url, c, max(4, per * c)) for c in levels]
        batches = batch_means(httpx.get(server.url + "/metrics").text)
    return {"rows": rows, "mean_batch": batches}


def markdown(results: dict) -> str:
    lines = [
        "| batching | concurrency | requests | throughput (s of video / s) | p50 latency | p95 latency |",
        "|---|---|---|---|---|---|",
    ]
    for mode, res in results.items():
        for r in res["rows"]:
            lines.append(
                f"| {mode} | {r['concurrency']} | {r['requests']} | **{r['throughput']:.2f}** | "
                f"{r['p50_s']:.2f} s | {r['p95_s']:.2f} s |"
            )
    on = results.get("on", {}).get("mean_batch", {})
    if on:
        lines += ["", "Mean adaptive batch size with batching on (from `/metrics`): "]
        lines[-1] += ", ".join(f"{k} {v:.1f}" for k, v in on.items())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=2, help="requests per client at each level")
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        results = {mode: run_mode(mode == "on", args.levels, args.requests, Path(d)) for mode in ("on", "off")}
    (args.out / "serving.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    print(table)
    if args.readme:
        replace_section(args.readme, "serving", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
