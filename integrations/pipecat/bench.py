"""The Pipecat face measured, in one run against a real server started here:

    .venv/bin/python bench.py [--readme ../../docs/audio-in.md] [--rounds 3]      (from integrations/pipecat)

- latency: from the first TTS audio frame into RealtimeAvatarVideoService to the first frame of the face saying
  it out of the processor, against Piper's own time for the first sentence (measured in the same run, in the
  server's environment: machines differ 2x);
- A/V skew: how far apart in time the processor releases an audio frame and the video frame of the same moment
  (95th percentile);
- CPU per stream: this process (decoding the fMP4) and the server's processes, in CPU seconds per second of
  video, while one utterance is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tests"))

from conftest import KEY, ROOT, Server  # noqa: E402
from pipecat.frames.frames import OutputImageRawFrame, TTSAudioRawFrame  # noqa: E402
from realtime_avatar_pipecat import RealtimeAvatarVideoService  # noqa: E402
from test_video_service import RATE, run, say  # noqa: E402

TEXT = "Maybe both of them will bring a map. Please remember the blue umbrella, because it will rain today."


def piper(text: str) -> tuple[bytes, float]:
    """Piper's 24 kHz PCM of `text`, and its median time on the first sentence (3 runs), in the server's env."""
    code = (
        "import sys, time, statistics, numpy as np\n"
        "from models.tts import create_engine, synthesize\n"
        "from models.media.audio import resample\n"
        "e = create_engine('piper'); synthesize(e, 'Warm up.')\n"
        "first = sys.argv[1].split('. ')[0] + '.'\n"
        "ms = []\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter(); synthesize(e, first); ms.append((time.perf_counter() - t) * 1000)\n"
        "s = synthesize(e, sys.argv[1])\n"
        "sys.stderr.write(f'{statistics.median(ms)}\\n')\n"
        "pcm = np.clip(resample(s.audio, s.sample_rate, 24000), -1, 1) * 32767\n"
        "sys.stdout.buffer.write(pcm.astype('<i2').tobytes())\n"
    )
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code, text], cwd=ROOT, capture_output=True,
                         check=True)  # fmt: skip
    return out.stdout, float(out.stderr.decode().strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants (Linux /proc)."""
    total, todo = 0.0, [pid]
    tick = 100.0
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo += [int(c) for c in children]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def one_round(url: str, pcm: bytes, server_pid: int) -> dict:
    service = RealtimeAvatarVideoService(base_url=url, api_key=KEY, size=512, fps=25)
    marks: dict = {}

    async def script(queue):
        await asyncio.sleep(1.0)
        marks["cpu0"], marks["srv0"], marks["t0"] = time.process_time(), cpu_seconds(server_pid), time.monotonic()
        await say(queue, pcm)
        await asyncio.sleep(len(pcm) / 2 / RATE + 1.0)
        marks["cpu1"], marks["srv1"], marks["t1"] = time.process_time(), cpu_seconds(server_pid), time.monotonic()

    down, _ = asyncio.run(run(service, script))
    video = [(t, f) for t, f in down if isinstance(f, OutputImageRawFrame)]
    times, vpts = np.array([t for t, _ in video]), np.array([f.pts for _, f in video])
    audio = [(t, f) for t, f in down if isinstance(f, TTSAudioRawFrame)]
    nearest = [int(np.argmin(np.abs(vpts - f.pts))) for _, f in audio]  # the video frame of the same moment
    skews = [abs((t - f.pts / 1e9) - (times[k] - vpts[k] / 1e9)) for (t, f), k in zip(audio, nearest, strict=True)]
    first_speech = audio[0][0]
    video_s = marks["t1"] - marks["t0"]
    return {"first_ms": (first_speech - service.stats["first_audio_in"]) * 1000,
            "skew95_ms": float(np.percentile(skews, 95) * 1000),
            "client_cpu": (marks["cpu1"] - marks["cpu0"]) / video_s,
            "server_cpu": (marks["srv1"] - marks["srv0"]) / video_s}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pcm, piper_first = piper(TEXT)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), AVATAR_API_KEYS=KEY)
        try:
            server.wait_ready()
            one_round(server.url, pcm, server.proc.pid)  # warm-up
            rows = [one_round(server.url, pcm, server.proc.pid) for _ in range(args.rounds)]
        finally:
            server.stop()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    text = (f"Measured by `integrations/pipecat/bench.py` ({time.strftime('%Y-%m-%d')}, 2 cores, 512x512 at 25 fps, "
            f"medians of {args.rounds} rounds): the first frame of the face speaking left the processor "
            f"**{med['first_ms']:.0f} ms** after the first TTS audio frame went in (Piper alone on the first "
            f"sentence: {piper_first:.0f} ms); audio and video of the same moment left it at most "
            f"{med['skew95_ms']:.0f} ms apart (95th percentile); CPU per stream: {med['client_cpu']:.2f} cores in the "
            f"bot's process (decoding) and {med['server_cpu']:.2f} in the server's (recognising, rendering, "
            f"encoding), per second of video.")  # fmt: skip
    print(text)
    if args.readme:
        body = args.readme.read_text()
        start, end = "<!-- pipecat:start -->", "<!-- pipecat:end -->"
        a, b = body.index(start) + len(start), body.index(end)
        args.readme.write_text(body[:a] + "\n" + text + "\n" + body[b:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
