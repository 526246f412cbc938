"""Hands-free benchmark: `/api/v1/live` against a real `bentoml serve`, beside push-to-talk, in one run.

    python scripts/bench_live.py [--readme docs] [--repeats 3]

A client sends a spoken question as a microphone would (16 kHz PCM in 30 ms frames, in real time), then
silence, and times from the end of its speech: the end of the turn (`speech_ended`: the endpoint silence plus
the VAD), the transcript, the reply's first sentence and its first video fragment. While that answer plays it
starts a second question and times from the first sample of that speech to the `interrupted` message (on which
the page stops playback: the avatar falls silent). Push-to-talk is `POST /api/v1/conversation` with the same
question as a WAV, timed from the request to its first video fragment. Speech recognition is the imported Whisper
or a tiny random one (as in scripts/bench_conversation.py); the LLM is the repository's fake one, writing a token
every `--token-ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_conversation import _whisper  # noqa: E402
from readme_section import replace_section  # noqa: E402

RATE, FRAME = 16000, 480  # samples: 30 ms frames
REPLY = "Sure! It is sunny and warm today. Take a hat, and drink some water when you go out for a walk."


def pcm(text: str) -> bytes:
    from models.media.audio import resample
    from models.tts import create_engine, synthesize

    s = synthesize(create_engine("piper"), text)
    return (resample(s.audio, s.sample_rate, RATE) * 32767).astype("<i2").tobytes()


def wav(data: bytes) -> bytes:
    import numpy as np
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.frombuffer(data, "<i2"), RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def live_turn(url: str, question: bytes, interruption: bytes) -> dict:
    """One hands-free exchange; times in ms."""
    import websockets

    marks: dict[str, float] = {}
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/live", max_size=None) as ws:
        await ws.send(json.dumps({"language": "en"}))

        async def receive():
            async for m in ws:
                now = time.perf_counter()
                if isinstance(m, bytes):
                    marks.setdefault("fragment", now)
                    continue
                kind = json.loads(m)["type"]
                if kind in ("speech_ended", "transcript", "sentence", "interrupted"):
                    marks.setdefault(kind, now)

        reader = asyncio.create_task(receive())

        async def say(data: bytes, until=None) -> None:
            start = time.perf_counter()
            for k, i in enumerate(range(0, len(data), FRAME * 2)):
                await ws.send(data[i : i + FRAME * 2])
                await asyncio.sleep(max(0.0, start + (k + 1) * FRAME / RATE - time.perf_counter()))
                if until and until():
                    return

        await say(bytes(RATE // 2) + question)
        marks["end_of_speech"] = time.perf_counter()
        await say(
            bytes(RATE * 2 * 20), until=lambda: "fragment" in marks and time.perf_counter() > marks["fragment"] + 1.5
        )
        marks["barge_in"] = time.perf_counter()
        await say(interruption + bytes(RATE * 2), until=lambda: "interrupted" in marks)
        reader.cancel()
    end = marks["end_of_speech"]
    row = {k: (marks[k] - end) * 1000 for k in ("speech_ended", "transcript", "sentence", "fragment") if k in marks}
    row["barge_in_ms"] = (marks["interrupted"] - marks["barge_in"]) * 1000 if "interrupted" in marks else None
    return row


def push_to_talk(url: str, question: bytes) -> float:
    import httpx

    t = time.perf_counter()
    files = {"audio": ("q.wav", wav(question), "audio/wav")}
    with httpx.stream("POST", url + "/api/v1/conversation", files=files, data={"language": "en"}, timeout=60) as r:
        r.raise_for_status()
        for _ in r.iter_raw():
            return (time.perf_counter() - t) * 1000
    raise RuntimeError("no video")


def run(url: str, repeats: int) -> dict:
    question, interruption = pcm("What is the weather like today?"), pcm("Wait, and what about tomorrow?")
    asyncio.run(live_turn(url, question, interruption))  # warm-up
    rows, ptt = [], []
    for _ in range(repeats):
        ptt.append(push_to_talk(url, question))
        rows.append(asyncio.run(live_turn(url, question, interruption)))
    keys = ("speech_ended", "transcript", "sentence", "fragment", "barge_in_ms")
    out = {k: statistics.median(r[k] for r in rows if r.get(k) is not None) for k in keys}
    return out | {"push_to_talk_ms": statistics.median(ptt), "runs": rows, "push_to_talk_runs": ptt}


def markdown(r: dict, repeats: int, asr: str, llm: str) -> str:
    return "\n".join([
        f"Medians of {repeats} exchanges, all-in-one `bentoml serve .` on CPU, 512x512, 25 fps; endpoint silence "
        f"600 ms; ASR: {asr}; LLM: {llm}.",
        "",
        "| from the end of the user's speech to | ms |",
        "|---|---|",
        f"| end of turn (`speech_ended`) | {r['speech_ended']:.0f} |",
        f"| transcript | {r['transcript']:.0f} |",
        f"| the reply's first sentence | {r['sentence']:.0f} |",
        f"| **its first video fragment** | **{r['fragment']:.0f}** |",
        f"| push-to-talk, request to first fragment (same question, same run) | {r['push_to_talk_ms']:.0f} |",
        "",
        f"Barge-in: from the first sample of the user's speech over the answer to the `interrupted` message (the page "
        f"stops playback on it): **{r['barge_in_ms']:.0f} ms**.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--token-ms", type=float, default=30)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from services.launcher import Server
    from tests.fake_llm import FakeLLM

    with tempfile.TemporaryDirectory() as d, FakeLLM(REPLY, delay_s=args.token_ms / 1000) as fake:
        tmp = Path(d)
        asr = _whisper(tmp)
        env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR__LLM__BASE_URL": fake.base_url,
               "AVATAR__LLM__MODEL": "fake"}  # fmt: skip
        with Server(".", env, args.out / "serve-live.log", cwd=ROOT) as server:
            result = run(server.url, args.repeats)
    (args.out / "live.json").write_text(json.dumps(result, indent=2))
    text = markdown(result, args.repeats, asr, f"a fake LLM writing a token every {args.token_ms:g} ms")
    print(text)
    if args.readme:
        replace_section(args.readme, "live", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
