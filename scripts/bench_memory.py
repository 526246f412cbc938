"""Memory under the largest legal requests: each kind sent twice at once to a fresh `bentoml serve .` (the cpu
profile), and each worker's peak resident memory (VmHWM) read after it. The manifests' memory limits are set from
the worst peak (configs/deploy/*.yaml; docs/deployment.md says how).

    python scripts/bench_memory.py [--readme docs] [--text-chars 600]

The video requests are at the largest size and frame rate (1024 px, 60 fps). Their text is shorter than the
longest legal text (2000 characters, ~2.5 min of video, many minutes on two cores): the renderer and the encoder
hold a bounded number of chunks whatever the length (models/render_mp4.py), so the length adds only its audio
(~6 MB a minute); the run shows it by sending two lengths. The longest text itself goes through speech alone.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import httpx
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from readme_section import replace_section  # noqa: E402

from services.launcher import Server  # noqa: E402

SERVICES = {"api": "avatar-pipeline", "tts": "tts", "avatar": "avatar"}
SENTENCE = "The quick brown fox jumps over the lazy dog, and the bright morning sun shines over the quiet hills. "


def text_of(chars: int) -> str:
    return (SENTENCE * (chars // len(SENTENCE) + 1))[:chars].rsplit(" ", 1)[0] + "."


def largest_photo() -> bytes:
    """The bundled portrait scaled to 6000x6000 (36 megapixels, under the 40 limit) as a JPEG under 10 MB."""
    import cv2

    rgb = cv2.imdecode(np.frombuffer((resources.files("assets") / "astronaut.png").read_bytes(), np.uint8), 1)
    big = cv2.resize(rgb, (6000, 6000), interpolation=cv2.INTER_CUBIC)
    for quality in (90, 80, 70, 60):
        ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if len(data) < 9.5e6:
            return data.tobytes()
    raise RuntimeError("could not fit the photo under 10 MB")


def longest_audio(seconds: float) -> bytes:
    """Piper's speech repeated to `seconds`, 16 kHz 16-bit WAV (300 s is 9.6 MB, under the 10 MB upload limit)."""
    import soundfile as sf

    from models.media.audio import resample
    from models.tts import create_engine, synthesize

    s = synthesize(create_engine("piper"), text_of(400))
    one = resample(s.audio, s.sample_rate, 16000)
    audio = np.tile(one, int(seconds * 16000 / len(one)) + 1)[: int(seconds * 16000) - 1600]
    out = io.BytesIO()
    sf.write(out, audio, 16000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def twice(send) -> list[int]:
    """Two of the same request at once; their statuses."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda _: send(), range(2)))


def workloads(url: str, chars: int, audio_s: float) -> list[tuple[str, object]]:
    client = httpx.Client(base_url=url, timeout=1800)
    big = {"size": 1024, "fps": 60}

    def generate(n):
        return lambda: client.post("/api/v1/generate", json={"text": text_of(n), **big}).status_code

    def stream():
        with client.stream("POST", "/api/v1/stream", json={"text": text_of(chars), **big}) as r:
            for _ in r.iter_raw():
                pass
            return r.status_code

    photo = largest_photo()
    clip = longest_audio(audio_s)
    return [
        ("speech, the longest text (2000 characters), `/v1/audio/speech`",
         lambda: client.post("/v1/audio/speech", json={"input": text_of(2000), "voice": "alloy"}).status_code),
        (f"video, 1024 px at 60 fps, {chars // 4} characters", generate(chars // 4)),
        (f"video, 1024 px at 60 fps, {chars} characters", generate(chars)),
        (f"stream, 1024 px at 60 fps, {chars} characters", stream),
        ("photo, 6000x6000 JPEG (36 megapixels, the largest under 10 MB)",
         lambda: client.post("/api/v1/avatars", files={"photo": ("big.jpg", photo, "image/jpeg")}).status_code),
        (f"audio in, {audio_s:.0f} s of speech (WAV, {len(clip) / 1e6:.1f} MB), no text, 256 px",
         lambda: client.post("/api/v1/animate", files={"audio": ("long.wav", clip, "audio/wav")},
                             data={"size": "256"}).status_code),
    ]  # fmt: skip


def peaks(server: Server) -> dict[str, float]:
    return {unit: server.peak_mb(name) for unit, name in SERVICES.items()}


def run(chars: int, audio_s: float) -> tuple[dict, list[tuple[str, list[int], dict, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AVATAR_DATA_DIR": tmp, "AVATAR_PROFILE": "cpu"}
        with Server(".", env, Path(tmp) / "serve.log") as server:
            httpx.post(server.url + "/api/v1/generate", json={"text": "Warm up."}, timeout=300).raise_for_status()
            start, rows = peaks(server), []
            for name, send in workloads(server.url, chars, audio_s):
                t = time.perf_counter()
                statuses = twice(send)
                rows.append((name, statuses, peaks(server), time.perf_counter() - t))
                print(f"{name}: {statuses} {rows[-1][2]} {rows[-1][3]:.0f} s", flush=True)
    return start, rows


def report(start: dict, rows: list) -> str:
    head = "| two at once | status | API | TTS | avatar | s |\n|---|---|---|---|---|---|"
    lines = [
        f"| after start and one short generate | | {start['api']:.0f} | {start['tts']:.0f} | {start['avatar']:.0f} | |"
    ]
    for name, statuses, p, took in rows:
        lines.append(f"| {name} | {', '.join(map(str, statuses))} | {p['api']:.0f} | {p['tts']:.0f} | "
                     f"{p['avatar']:.0f} | {took:.0f} |")  # fmt: skip
    worst = rows[-1][2]
    return "\n".join([
        "Peak resident memory (VmHWM, MB) of each worker, cumulative: each row is the highest so far.",
        "",
        head,
        *lines,
        "",
        f"Worst peaks: API {worst['api']:.0f} MB, TTS {worst['tts']:.0f} MB, avatar {worst['avatar']:.0f} MB "
        f"(all in one: {sum(worst.values()):.0f} MB).",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--text-chars", type=int, default=600, help="text of the video requests (default 600)")
    ap.add_argument("--audio-s", type=float, default=300, help="audio-in length (default 300, the limit)")
    args = ap.parse_args(argv)
    start, rows = run(args.text_chars, args.audio_s)
    body = report(start, rows)
    print(body)
    if args.readme:
        replace_section(args.readme, "memory", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
