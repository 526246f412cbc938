"""Audio in, measured in one run: how close the audio path's mouth is to the text path's, what it costs against
Piper on the same text, and the live socket in real time.

    python scripts/bench_audio_in.py [--readme docs] [--rounds 3] [--skip-serve]

1. Plans (models/evaluation/alignment.py): the held-out sentences of configs/align_sentences.yaml, spoken by the
   text path's engine, aligned from their audio (and text), compared frame by frame with the engine's own plan.
2. Decoded videos: English held-out sentences made into MP4s by `Pipeline.generate`; their audio, decoded back, is
   animated with and without the text; Face Mesh measures the inner-lip opening in all three decoded videos.
3. Over HTTP, against a real `bentoml serve` (interleaved rounds, medians): /api/v1/generate of a ~20 s text, and
   /api/v1/animate of the same speech with and without the text; Piper alone on the same text is the yardstick.
4. The live socket: a voice sent in real time (20 ms frames) -> the first fragment with speech, timed from the
   moment 0.2 s of the voice has been sent, against Piper's time for the first sentence; an interrupt -> the
   `interrupted` message and the next fragment; two sockets at once -> does each keep real time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from readme_section import replace_section  # noqa: E402

LONG = ("Thanks for joining me today. I will walk you through the plan, step by step, and then we can talk about "
        "what comes next. Morning meetings are much better with a warm cup of coffee, so please bring one. The "
        "museum opens at nine, but the lobby is busy by eight, and the parking lot fills up early. Maybe we should "
        "meet at the small cafe by the bay instead, where the view is better and the music is softer.")  # fmt: skip
VOICE = "Bring me the blue paper from the top shelf, please. Maybe we should wait until the rain stops."


def plans(sentences_path: Path) -> tuple[str, list[dict]]:
    from models.evaluation.alignment import evaluate, load_sentences, summary, table
    from models.tts import create_engine

    lines = summary(evaluate(load_sentences(sentences_path), create_engine("piper")))
    return table(lines), lines


def decoded_videos(n: int = 4) -> dict:
    """Median inner-lip correlation of the audio path's decoded MP4s with the text path's."""
    from models.evaluation.alignment import load_sentences
    from models.evaluation.measure import face_tracks
    from models.media import decode_audio, decode_frames
    from models.pipeline import Pipeline
    from models.settings import load_settings

    texts = load_sentences(ROOT / "configs" / "align_sentences.yaml")["en"][:n]
    out: dict[str, list[float]] = {"text": [], "audio": [], "live": []}
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(load_settings(overrides={"storage": {"data_dir": tmp}}))
        for k, text in enumerate(texts):
            made = pipe.generate(text, Path(tmp) / f"t{k}.mp4")
            ref = face_tracks(decode_frames(made.path))["mouth"]
            audio, sr, _ = decode_audio(made.path)
            for mode in out:
                path = Path(tmp) / f"{mode}{k}.mp4"
                if mode == "live":  # what a stream's pieces get: phones recognised
                    from models.tts.base import SpeechChunk

                    found = pipe.aligner.align(audio, sr, None, "en", live=True)
                    _render(pipe, SpeechChunk(audio, sr, "", found.phonemes), path)
                else:
                    pipe.animate(audio, sr, path, text=text if mode == "text" else None)
                mouth = face_tracks(decode_frames(path))["mouth"]
                m = min(len(ref), len(mouth))
                out[mode].append(float(np.corrcoef(ref[:m], mouth[:m])[0, 1]))
    return {k: round(statistics.median(v), 3) for k, v in out.items()} | {"sentences": len(texts)}


def _render(pipe, piece, path: Path) -> None:
    from models.avatar.controls import MotionConfig
    from models.render_mp4 import SpokenJob, render_as_spoken

    job = SpokenJob(pipe.avatar(), MotionConfig(), path)
    render_as_spoken(pipe.renderer, job, [piece], pipe.settings.video)


def piper_ms(text: str, repeats: int = 3) -> float:
    from models.tts import create_engine, synthesize

    engine = create_engine("piper")
    synthesize(engine, "Warm up.")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        synthesize(engine, text)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def over_http(url: str, rounds: int) -> dict:
    """Medians of generate and animate (with and without the text) of the same ~20 s speech, interleaved."""
    import httpx

    from models.media.audio import encode_audio
    from models.tts import create_engine, synthesize

    s = synthesize(create_engine("piper"), LONG)
    clip = encode_audio(s.audio, s.sample_rate, "flac")[0]
    calls = {
        "generate": lambda: httpx.post(url + "/api/v1/generate", json={"text": LONG}, timeout=600),
        "animate, with text": lambda: httpx.post(url + "/api/v1/animate", files={"audio": ("a.flac", clip)},
                                                 data={"text": LONG}, timeout=600),
        "animate, audio only": lambda: httpx.post(url + "/api/v1/animate", files={"audio": ("a.flac", clip)},
                                                  timeout=600),
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in calls}
    meta: dict[str, dict] = {}
    for _ in range(rounds + 1):  # the first round warms up
        for name, call in calls.items():
            t = time.perf_counter()
            r = call()
            r.raise_for_status()
            times[name].append((time.perf_counter() - t) * 1000)
            meta[name] = r.json()["metadata"]
    return {k: {"ms": statistics.median(v[1:]), "mouth": meta[k]["mouth"], "align_ms": meta[k].get("align_ms"),
                "audio_s": meta[k]["audio_duration_s"]} for k, v in times.items()}  # fmt: skip


async def live_session(url: str, pcm: bytes, rate: int, interrupt_after: float | None = None, **connect) -> dict:
    """One client of /api/v1/animate/live: 1 s of idle, the voice in real time (20 ms messages), an interrupt
    `interrupt_after` s into it (if given), then `end`. Returns when each message arrived (s from the hello):
    `fragments`, `events` (time, message), `voice_at`, `interrupt_at`; `connect`: websockets.connect's options."""
    import websockets

    marks: dict = {"fragments": [], "events": []}
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/animate/live", max_size=None, **connect) as ws:
        marks["subprotocol"] = ws.subprotocol
        await ws.send(json.dumps({"sample_rate": rate}))
        t0 = time.monotonic()

        async def receive():
            async for m in ws:
                now = time.monotonic() - t0
                if isinstance(m, bytes):
                    marks["fragments"].append(now)
                else:
                    marks["events"].append((now, json.loads(m)))

        reader = asyncio.create_task(receive())
        await asyncio.sleep(1.0)
        marks["voice_at"] = time.monotonic() - t0
        step = int(0.02 * rate) * 2
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step])
            await asyncio.sleep(0.02)
            if interrupt_after and time.monotonic() - t0 - marks["voice_at"] > interrupt_after:
                marks["interrupt_at"] = time.monotonic() - t0
                await ws.send(json.dumps({"type": "interrupt"}))
                break
        await asyncio.sleep(1.0)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(reader, 60)
    return marks


async def live_socket(url: str, pcm: bytes, rate: int, interrupt_after: float | None = None) -> dict:
    return _live_times(await live_session(url, pcm, rate, interrupt_after))


def _live_times(m: dict) -> dict:
    speaking = next(t for t, e in m["events"] if e["type"] == "speaking")
    first = next(t for t in m["fragments"] if t >= speaking)
    done_at = next(e["at_s"] for _, e in m["events"] if e["type"] == "done")
    out = {"first_ms": (first - m["voice_at"] - 0.2) * 1000, "media_s": done_at, "wall_s": m["fragments"][-1]}
    # a player that started with the first fragment is starved where a fragment's media arrives after its time
    fr = m["fragments"]
    out["late_ms"] = max(0.0, (fr[-1] - fr[0]) - done_at) * 1000
    if "interrupt_at" in m:
        cut = next(t for t, e in m["events"] if e["type"] == "interrupted")
        out["interrupted_ms"] = (cut - m["interrupt_at"]) * 1000
        out["next_fragment_ms"] = (next(t for t in fr if t >= cut) - m["interrupt_at"]) * 1000
    return out


def live(url: str, rounds: int) -> dict:
    from models.media.audio import resample
    from models.tts import create_engine, synthesize

    rate = 24000
    s = synthesize(create_engine("piper"), VOICE)
    pcm = (resample(s.audio, s.sample_rate, rate) * 32767).astype("<i2").tobytes()
    one = [asyncio.run(live_socket(url, pcm, rate, interrupt_after=2.5)) for _ in range(rounds)]

    async def two():
        return await asyncio.gather(live_socket(url, pcm, rate), live_socket(url, pcm, rate))

    pairs = [x for _ in range(rounds) for x in asyncio.run(two())]
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    return {"first_ms": med(one, "first_ms"), "interrupted_ms": med(one, "interrupted_ms"),
            "next_fragment_ms": med(one, "next_fragment_ms"), "two_first_ms": med(pairs, "first_ms"),
            "two_late_ms": max(r["late_ms"] for r in pairs), "two_media_vs_wall": med(pairs, "media_s") /
            med(pairs, "wall_s"), "rounds": rounds}  # fmt: skip


def first_sentence_ms() -> float:
    return piper_ms(VOICE.split(". ")[0] + ".")


def report(plan_table: str, videos: dict, http: dict | None, piper_long: float, live_r: dict | None,
           piper_first: float) -> str:  # fmt: skip
    lines = [f"Measured by `make bench-audio-in` on {platform.machine()} ({time.strftime('%Y-%m-%d')}), 2 cores; "
             "medians. Plans: the held-out sentences of `configs/align_sentences.yaml`, each spoken 3 times, 25 fps.",
             "", plan_table,
             f"Decoded videos (Face Mesh inner-lip opening of the audio path's MP4 against the text path's, "
             f"{videos['sentences']} English sentences at 512 px): with the text **{videos['text']}**, audio only "
             f"**{videos['audio']}**, audio only as a live piece (phones) **{videos['live']}**.", ""]  # fmt: skip
    if http:
        lines += ["| over HTTP, ~20 s of speech | ms | x Piper alone | mouth |", "|---|---|---|---|"]
        lines += [f"| Piper alone on the same text | {piper_long:.0f} | 1.00 | - |"]
        for name, v in http.items():
            lines.append(f"| {name} | {v['ms']:.0f} | {v['ms'] / piper_long:.2f} | {v['mouth']} |")
        lines.append("")
    if live_r:
        lines += [
            f"Live socket ({live_r['rounds']} rounds): the first fragment with speech came **{live_r['first_ms']:.0f} "
            f"ms** after the first 0.2 s of the voice had been sent (Piper alone on the first sentence: "
            f"{piper_first:.0f} ms); with two sockets at once {live_r['two_first_ms']:.0f} ms, media/wall "
            f"{live_r['two_media_vs_wall']:.2f}, a player starved at most {live_r['two_late_ms']:.0f} ms. An "
            f"interrupt was answered in {live_r['interrupted_ms']:.0f} ms and the next fragment (mouth shut) left "
            f"{live_r['next_fragment_ms']:.0f} ms after it."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-serve", action="store_true", help="only the in-process parts (1 and 2)")
    args = ap.parse_args(argv)
    plan_table, _ = plans(ROOT / "configs" / "align_sentences.yaml")
    print(plan_table)
    videos = decoded_videos()
    print(videos)
    piper_long, piper_first, http, live_r = piper_ms(LONG), first_sentence_ms(), None, None
    if not args.skip_serve:
        from services.launcher import Server

        with tempfile.TemporaryDirectory() as tmp, Server(".", {"AVATAR_DATA_DIR": tmp}, Path(tmp) / "serve.log",
                                                          cwd=ROOT) as server:  # fmt: skip
            http = over_http(server.url, args.rounds)
            live_r = live(server.url, args.rounds)
    text = report(plan_table, videos, http, piper_long, live_r, piper_first)
    print(text)
    if args.readme:
        replace_section(args.readme, "audio-in", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
