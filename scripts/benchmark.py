"""Benchmark of the embedded pipeline and its raw parts, measured in one run (compare ratios, not absolutes).

    python scripts/benchmark.py [--out bench-out] [--readme docs] [--repeats 3]

Measures, for a ~2.5 s and a ~20 s utterance at 512x512, 25 fps: the whole pipeline (RTF and stage times),
then Piper alone, rendering alone and x264 alone on the same frames; the cv2 vs torch warp backends; and
writes a contact sheet and a mouth strip (raw frames of the bundled portrait and of every photo in `--faces`,
see `scripts/mouth_views.py`) so anyone can look at the result.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mouth_views
from bench_texts import TEXTS
from readme_section import replace_section

from models.avatar.portrait import PortraitRenderer, speech_track
from models.media import Mp4Writer
from models.pipeline import Pipeline, default_image
from models.settings import load_settings


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def measure(pipe: Pipeline, text: str, tmp: Path, repeats: int) -> dict:
    runs = [pipe.generate(text, tmp / f"p{i}.mp4").timings for i in range(repeats)]
    t = {k: statistics.median(getattr(r, k) for r in runs) for k in ("tts_ms", "avatar_ms", "encode_ms", "total_ms")}
    dur = runs[0].audio_duration_s
    tts_s, speech = median_time(lambda: pipe.speak(text), repeats)
    r = pipe.renderer
    avatar = pipe.avatar()
    track = speech_track(speech.audio, speech.sample_rate, speech.phonemes)
    render_s, frames = median_time(lambda: list(r.frames(avatar, r.plan(avatar, track))), repeats)
    v = pipe.settings.video

    def encode():
        with Mp4Writer(
            tmp / "raw.mp4", r.size, r.size, r.fps, speech.sample_rate, preset=v.preset, crf=v.crf, params=v.x264_params
        ) as w:
            w.write_audio(speech.audio, speech.sample_rate)
            w.write_frames(frames)

    encode_s, _ = median_time(encode, repeats)
    parts = tts_s + render_s + encode_s
    return {
        "audio_s": dur,
        "frames": len(frames),
        "pipeline": t,
        "rtf": t["total_ms"] / 1000 / dur,
        "raw": {"piper_s": tts_s, "render_s": render_s, "x264_s": encode_s, "sum_s": parts},
        "ratio_to_parts": t["total_ms"] / 1000 / parts,
        "render_ms_per_frame": render_s / len(frames) * 1000,
    }


def backends(pipe: Pipeline, repeats: int) -> dict:
    """Per-frame warp cost of each backend on the same 2 requests x 25 frames (one batch)."""
    out = {}
    speech = pipe.speak(TEXTS["short (~2.5 s)"])
    image = default_image(pipe.settings)
    for name, backend, threads in (("cv2, 1 thread", "cv2", 1), ("cv2, 2 threads", "cv2", 2), ("torch", "torch", 1)):
        r = PortraitRenderer(512, 25, backend=backend, device="cpu", threads=threads)
        avatar = r.prepare(image)
        plan = r.plan(avatar, speech_track(speech.audio, speech.sample_rate, speech.phonemes))
        jobs = [(avatar, plan, None)] * 2
        s, frames = median_time(lambda r=r, jobs=jobs: r.render_batch(jobs), repeats)
        out[name] = s / sum(len(f) for f in frames) * 1000
    return out


def batched_warp(size: int = 512, batches=(1, 4, 16, 32)) -> dict[int, float]:
    """torch grid_sample alone, per frame, by batch size: where batching the frames of requests pays."""
    import torch

    img = torch.rand(1, 3, size, size)
    out = {}
    for n in batches:
        grid = torch.rand(n, size, size, 2) * 2 - 1
        src = img.expand(n, -1, -1, -1)
        torch.nn.functional.grid_sample(src, grid, align_corners=True)
        reps = max(2, 64 // n)
        t = time.perf_counter()
        for _ in range(reps):
            torch.nn.functional.grid_sample(src, grid, align_corners=True)
        out[n] = (time.perf_counter() - t) / reps / n * 1000
    return out


def markdown(results: dict, warp: dict, batched: dict[int, float]) -> str:
    lines = [
        f"Measured by `make bench` on {platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}; 512x512, 25 fps, x264 veryfast, medians of the runs.",
        "",
        "| utterance | audio | pipeline total | RTF | tts / avatar / encode (busy ms) | Piper alone | render alone "
        "| x264 alone | sum of parts | pipeline / parts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        p, raw = r["pipeline"], r["raw"]
        lines.append(
            f"| {name} | {r['audio_s']:.2f} s | {p['total_ms']:.0f} ms | **{r['rtf']:.3f}** | "
            f"{p['tts_ms']:.0f} / {p['avatar_ms']:.0f} / {p['encode_ms']:.0f} | {raw['piper_s'] * 1000:.0f} ms | "
            f"{raw['render_s'] * 1000:.0f} ms ({r['render_ms_per_frame']:.1f} ms/frame) | "
            f"{raw['x264_s'] * 1000:.0f} ms | {raw['sum_s'] * 1000:.0f} ms | **{r['ratio_to_parts']:.2f}x** |"
        )
    lines += ["", "Warp backends on this CPU (2 requests x ~60 frames in one batch, per frame incl. mouth drawing): "]
    lines[-1] += ", ".join(f"{k} {v:.1f} ms" for k, v in warp.items())
    lines += ["", "torch `grid_sample` alone at 512x512 on this CPU, per frame by batch size: "]
    lines[-1] += ", ".join(f"{n}: {v:.2f} ms" for n, v in batched.items())
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--faces", type=Path, default=Path("docs/faces"), help="extra portraits for the pictures")
    ap.add_argument("--serving", action="store_true", help="also the serving benchmark (concurrency, batching on/off)")
    ap.add_argument("--streaming", action="store_true", help="also the streaming benchmark (TTFF, concurrent streams)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        settings = load_settings(overrides={"storage": {"data_dir": str(tmp / "data")}})
        pipe = Pipeline(settings)
        pipe.generate("Warm up.", tmp / "warm.mp4")
        results = {name: measure(pipe, text, tmp, args.repeats) for name, text in TEXTS.items()}
        warp = backends(pipe, args.repeats)
        batched = batched_warp()
        pipe.generate(TEXTS["long (~20 s)"], args.out / "long.mp4")
        rendered = mouth_views.render_all(pipe, mouth_views.portraits(args.faces, pipe.settings), TEXTS["long (~20 s)"])
        mouth_views.write_views(rendered, pipe.renderer.fps, args.out, mouth_views.STRIP_STARTS)
    record = {"results": results, "warp_ms": warp, "grid_sample_ms_per_frame": batched}
    (args.out / "benchmark.json").write_text(json.dumps(record, indent=2))
    table = markdown(results, warp, batched)
    print(table)
    if args.readme:
        replace_section(args.readme, "benchmark", table)
    if args.serving:  # same run: the real server under concurrent load, batching on and off
        import bench_serving

        bench_serving.main(["--out", str(args.out)] + (["--readme", str(args.readme)] if args.readme else []))
    if args.streaming:  # same run: time to first fragment and concurrent real-time streams
        import bench_stream

        bench_stream.main(["--out", str(args.out)] + (["--readme", str(args.readme)] if args.readme else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
