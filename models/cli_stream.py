"""`avatar stream`: a fragmented MP4 written to a file, to standard output or into a player while it is made."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from models.errors import AvatarError

PLAYERS = (
    ["ffplay", "-autoexit", "-loglevel", "error", "-"],
    ["mpv", "--really-quiet", "-"],
    ["vlc", "--play-and-exit", "-"],
)


def stream_command(args: argparse.Namespace, make_pipeline: Callable) -> int:
    """Checks where the stream goes before anything loads, then streams it there and reports."""
    from models.avatar.images import load_image
    from models.stream import StreamStats
    from models.tts import SynthesisOptions

    text = sys.stdin.read() if args.text == "-" else args.text
    player = _player(args)
    if args.output and str(args.output) != "-" and not args.output.parent.exists():
        raise AvatarError(f"output folder does not exist: {args.output.parent}", field="output")
    image = load_image(args.avatar) if args.avatar else None
    pipeline, stats = make_pipeline(args), StreamStats()
    t0 = time.perf_counter()
    stream = pipeline.stream(text, args.language, image, args.voice, SynthesisOptions(speed=args.speed),
                             args.size, args.fps, args.seed, stats=stats)  # fmt: skip
    proc = subprocess.Popen(player, stdin=subprocess.PIPE) if player else None
    first = _pump(stream, proc.stdin if proc else _StreamSink(args.output), t0, owned=proc is None)
    if proc:
        proc.wait()
    _report(args, "player" if proc else str(args.output), first, stats)
    return 0


def _player(args: argparse.Namespace) -> list[str] | None:
    if not args.play:
        return None
    player = next((cmd for cmd in PLAYERS if shutil.which(cmd[0])), None)
    if player is None:
        raise AvatarError("no player found for --play", allowed=[c[0] for c in PLAYERS] + ["-o FILE"], field="play")
    return player


def _pump(stream: Iterator[bytes], sink, t0: float, owned: bool) -> float | None:
    """Write each piece as it comes; ms to the first one. A file of ours is removed if the stream fails."""
    first = None
    try:
        for data in stream:
            first = first or (time.perf_counter() - t0) * 1000
            sink.write(data)
            sink.flush()
    except BaseException:
        if owned:
            sink.abort()
        raise
    sink.close()
    return first


def _report(args: argparse.Namespace, where: str, first: float | None, stats) -> None:
    if args.json:
        print(json.dumps({"output": where, "first_fragment_ms": round(first, 1), **stats.as_dict()}), file=sys.stderr)
    else:
        print(f"streamed {stats.audio_duration_s:.2f} s of video to {where}: first fragment after {first:.0f} ms, "
              f"total {stats.total_ms:.0f} ms (RTF {stats.rtf:.3f})", file=sys.stderr)  # fmt: skip


class _StreamSink:
    """A file written as the stream arrives (readable while it grows), renamed into place only when complete;
    '-' is standard output."""

    def __init__(self, path: Path):
        import tempfile

        self.path = path
        if str(path) == "-":
            self.tmp, self.f = None, sys.stdout.buffer
        else:
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".mp4.part")
            self.tmp, self.f = Path(tmp), os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        if self.tmp:
            self.f.close()
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.tmp:
            self.f.close()
            self.tmp.unlink(missing_ok=True)
