"""Image benchmark: sizes and cold starts of the images `make images` builds, beside the host, in one run.

    python scripts/bench_images.py [--runs 3] [--readme docs]

- size of every image: unpacked (on a node's disk) and compressed (its gzip layers: what a registry stores and a
  node pulls);
- cold start of the all-in-one image, medians of --runs fresh containers: `podman run` -> /readyz 200, -> the
  first fragment of a stream asked for the moment it is ready, and (other fresh containers) -> the first
  /api/v1/generate answer; the same for `bentoml serve .` on the host; each split image alone -> ready;
- where a start's time goes: the same steps one after another in one process inside the image (imports, model
  loads, the first short video), beside `podman run` of a bare `python -c pass`.
Nothing here is asserted: the numbers go into the docs (section `images`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from containers import IMAGES, Container, compressed_size, image_exists, image_name, image_size, podman
from readme_section import replace_section

from models.evaluation.streaming import measure_stream
from services.launcher import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
STREAM = {"text": "Hello! I started a moment ago, and I am already speaking to you."}
GENERATE = {"text": "Hello! I started a moment ago, and this is my first video."}
STEPS = r"""
import json, time
t = time.perf_counter(); out = {}
def mark(step):
    global t
    now = time.perf_counter(); out[step] = round((now - t) * 1000); t = now
import bentoml; mark("import bentoml")
import services.pipeline; mark("import the three service modules")
from models.device import resolve_device
from models.settings import load_settings, tts_engine_kwargs
from models.tts import create_engine
s = load_settings(); device = resolve_device(s.device); mark("settings and device")
engine = create_engine(s.tts.engine, **tts_engine_kwargs(s, device)); mark("TTS: Piper voice and eSpeak")
from models.pipeline import Pipeline, default_image
p = Pipeline(s, tts=engine); p.avatar(default_image(s)); mark("avatar: Face Mesh landmarks of the portrait")
p.generate("Hello.", "/tmp/warm.mp4"); mark("first short video (first calls of each part)")
print(json.dumps(out))
"""


def sizes() -> list[dict]:
    rows = []
    for unit in IMAGES:
        name = image_name(unit)
        rows.append(
            {"image": name, "unpacked_mb": image_size(name) / 1e6, "compressed_mb": compressed_size(name) / 1e6}
        )
        print(rows[-1])
    return rows


def stream_ttff(url: str) -> float:
    t0 = time.perf_counter()
    with httpx.stream("POST", url + "/api/v1/stream", json=STREAM, timeout=120) as r:
        r.raise_for_status()
        report = measure_stream(r.iter_raw(), t0)
    return report.ttff_ms / 1000


def generate_s(url: str) -> float:
    t0 = time.perf_counter()
    httpx.post(url + "/api/v1/generate", json=GENERATE, timeout=120).raise_for_status()
    return time.perf_counter() - t0


def container_start(unit: str, probe: str, then=None) -> tuple[float, float | None]:
    c = Container(image_name(unit), f"ra-bench-{unit}", port=free_port(), env=_alone(unit))
    try:
        ready = c.start().wait(probe, timeout=300)
        after = then(c.url) if then else None
        return ready, (ready + after if after is not None else None)
    finally:
        c.remove()


def host_start(then) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-host-") as tmp:
        server = Server(".", {"AVATAR_DATA_DIR": tmp}, Path(tmp) / "serve.log", cwd=ROOT)
        t0 = time.monotonic()
        try:
            server.start().wait_ready(300)
            ready = time.monotonic() - t0
            return ready, ready + then(server.url)
        finally:
            server.stop()


def _alone(unit: str) -> dict[str, str]:
    """The API image alone has no dependencies to reach: its start ends at /livez (its readiness needs them)."""
    return {"AVATAR_TTS_URL": "http://127.0.0.1:9", "AVATAR_RENDER_URL": "http://127.0.0.1:9"} if unit == "api" else {}


def cold_starts(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _ in range(runs):
        for key, value in (
            ("container stream", container_start("all", "/readyz", stream_ttff)),
            ("container generate", container_start("all", "/readyz", generate_s)),
            ("host stream", host_start(stream_ttff)),
            ("host generate", host_start(generate_s)),
        ):
            out.setdefault(key + " ready", []).append(value[0])
            out.setdefault(key + " answer", []).append(value[1])
        for unit in ("api", "tts", "avatar"):
            out.setdefault(f"{unit} ready", []).append(
                container_start(unit, "/livez" if unit == "api" else "/readyz")[0]
            )
        print({k: round(v[-1], 2) for k, v in out.items()})
    return out


def breakdown() -> dict[str, int]:
    t0 = time.monotonic()
    podman("run", "--rm", "--pull=never", "--entrypoint", "python", image_name("all"), "-c", "pass")
    bare = round((time.monotonic() - t0) * 1000)
    out = podman("run", "--rm", "--pull=never", "--entrypoint", "python", "-w", "/home/bentoml/bento/src",
                 image_name("all"), "-c", STEPS, timeout=600)  # fmt: skip
    return {"podman run of `python -c pass`": bare, **json.loads(out.strip().splitlines()[-1])}


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(size_rows: list[dict], starts: dict[str, list[float]], steps: dict[str, int], runs: int) -> str:
    m = {k: median(v) for k, v in starts.items()}
    lines = [
        f"Measured by `make bench-images` on {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}; podman {podman('version', '--format', '{{.Client.Version}}').strip()}, "
        f"the Debian bookworm base; cold starts are medians of {runs} fresh containers of the images as built "
        "(no volume).",
        "",
        "| image | unpacked | compressed (pulled) |",
        "|---|---|---|",
        *(f"| `{r['image']}` | **{r['unpacked_mb']:.0f} MB** | {r['compressed_mb']:.0f} MB |" for r in size_rows),
        "",
        "| cold start (512x512, 25 fps) | ready (`/readyz` 200) | first streamed fragment | first `/api/v1/generate` |",
        "|---|---|---|---|",
        f"| all-in-one image, `podman run` | {m['container stream ready']:.1f} s | "
        f"**{m['container stream answer']:.1f} s** | **{m['container generate answer']:.1f} s** |",
        f"| `bentoml serve .` on the host, same run | {m['host stream ready']:.1f} s | "
        f"{m['host stream answer']:.1f} s | {m['host generate answer']:.1f} s |",
        f"| API image alone (`/livez`) | {m['api ready']:.1f} s | | |",
        f"| TTS image alone | {m['tts ready']:.1f} s | | |",
        f"| avatar image alone | {m['avatar ready']:.1f} s | | |",
        "",
        "Where a start's time goes (the same steps one after another in one process inside the image; a real start "
        "runs them in four processes at once on the two cores: BentoML's arbiter, the API, TTS and avatar):",
        "",
        "| step | ms |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in steps.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--readme", type=Path)
    args = ap.parse_args(argv)
    missing = [n for n in map(image_name, IMAGES) if not image_exists(n)]
    if missing:
        sys.exit(f"bench_images: build the images first (make images): {missing}")
    size_rows = sizes()
    steps = breakdown()
    print(steps)
    starts = cold_starts(args.runs)
    text = table(size_rows, starts, steps, args.runs)
    print(text)
    if args.readme:
        replace_section(args.readme, "images", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
