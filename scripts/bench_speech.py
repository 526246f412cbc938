"""Speech alone: our `/v1/audio/speech` (WAV) against Piper's own HTTP server, same voice, in one run.

    python scripts/bench_speech.py [--requests 20] [--readme docs]

Starts a real `bentoml serve` of the pipeline and `python -m piper.http_server` on the bundled joe voice, then
sends the same texts to both, interleaved (ours, Piper's, ours, ...), one request at a time, and compares the
latency of the whole WAV (and, for ours, of its first bytes: it is sent sentence by sentence).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from readme_section import replace_section

from models.tts.piper import default_voice_paths
from services.launcher import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
TEXTS = {
    "one sentence (~2.5 s)": "The little boat drifted slowly toward the harbour lights.",
    "two sentences (~5 s)": "Good morning, and thank you for calling. How can I help you with your order today?",
}


def timed_post(client: httpx.Client, url: str, body: dict) -> tuple[float, float, int]:
    """(seconds to the first body bytes, seconds to the whole body, bytes)."""
    t = time.perf_counter()
    first, size = None, 0
    with client.stream("POST", url, json=body, timeout=120) as r:
        r.raise_for_status()
        for data in r.iter_bytes():
            first = first or time.perf_counter() - t
            size += len(data)
    return first, time.perf_counter() - t, size


class PiperServer:
    """Piper's own Flask server on the bundled voice (its default settings, as a user would start it)."""

    def __init__(self, log: Path):
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PiperServer:
        model, _ = default_voice_paths()
        cmd = [
            sys.executable,
            "-m",
            "piper.http_server",
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT, cwd=model.parent)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/info", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"Piper's server did not start: see {self.log}")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run(requests: int, tmp: Path) -> dict:
    env = {"AVATAR_DATA_DIR": str(tmp / "data")}
    rows = {}
    with (
        Server("services.pipeline:AvatarPipeline", env, tmp / "serve.log", cwd=ROOT) as ours,
        PiperServer(tmp / "piper.log") as piper,
        httpx.Client() as client,
    ):
        targets = {
            "ours": lambda text: timed_post(
                client,
                ours.url + "/v1/audio/speech",
                {"model": "tts-1", "input": text, "voice": "default", "response_format": "wav"},
            ),  # fmt: skip
            "piper": lambda text: timed_post(client, piper.url + "/synthesize", {"text": text}),
        }
        for name, text in TEXTS.items():
            for call in targets.values():  # warm both (first onnxruntime runs are slower)
                call(text), call(text)
            got = {k: [] for k in targets}
            for _ in range(requests):
                for k, call in targets.items():
                    got[k].append(call(text))
            rows[name] = {k: _medians(v) for k, v in got.items()}
    return rows


def _medians(runs: list[tuple[float, float, int]]) -> dict:
    return {"first_s": statistics.median(r[0] for r in runs), "total_s": statistics.median(r[1] for r in runs),
            "bytes": runs[0][2]}  # fmt: skip


def markdown(rows: dict, requests: int) -> str:
    import platform

    lines = [
        f"Measured by `make bench` on {platform.machine()}, {_cores()} cores, {time.strftime('%Y-%m-%d')}; the bundled "
        f"joe voice, WAV, {requests} interleaved requests per text, one at a time; medians.",
        "",
        "| text | ours: first bytes | ours: whole WAV | Piper's server: whole WAV | ours / Piper's |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        o, p = r["ours"], r["piper"]
        lines.append(f"| {name} | {o['first_s'] * 1000:.0f} ms | {o['total_s'] * 1000:.0f} ms | "
                     f"{p['total_s'] * 1000:.0f} ms | **{o['total_s'] / p['total_s']:.2f}x** |")  # fmt: skip
    return "\n".join(lines)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.requests, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speech.json").write_text(json.dumps(rows, indent=2))
    text = markdown(rows, args.requests)
    print(text)
    if args.readme:
        replace_section(args.readme, "speech", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
