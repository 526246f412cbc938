"""Audio bombs: hours of silence in a few KB, made here byte by byte, are refused by every route that takes audio
(clips to animate, to transcribe, to clone a voice from) in milliseconds and without memory, whether the file
states its length or not. Each runs in a fresh Python so its peak memory (VmHWM) can be read; decoded whole, three
hours at 8 kHz would be 350 MB of float32, an hour of Opus at 48 kHz 700 MB."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
RATE = 8000  # FLAC's: three hours in 20 KB (Opus decodes at 48 kHz whatever it says)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _utf8_number(n: int) -> bytes:
    return chr(n).encode("utf-8", "surrogatepass")  # FLAC codes frame numbers as UTF-8 does (below 2^21 here)


def flac_bomb(hours: float, declared: bool) -> bytes:
    """Mono 16-bit FLAC whose every frame is one constant subframe of 65535 zero samples (14 bytes); the
    STREAMINFO block states the length, or 0 (unknown) when not `declared`."""
    block = 65535
    frames = int(hours * 3600 * RATE) // block
    info = struct.pack(">HH", block, block) + (14).to_bytes(3, "big") + (16).to_bytes(3, "big")
    packed = (RATE << 44) | (0 << 41) | (15 << 36) | (frames * block if declared else 0)
    info += packed.to_bytes(8, "big") + bytes(16)
    out = [b"fLaC", bytes([0x80, 0, 0, len(info)]), info]
    for n in range(frames):
        header = b"\xff\xf8" + bytes([0x74, 0x08]) + _utf8_number(n) + struct.pack(">H", block - 1)
        frame = header + bytes([_crc8(header)]) + b"\x00\x00\x00"  # constant subframe, value 0
        out.append(frame + struct.pack(">H", _crc16(frame)))
    return b"".join(out)


def _ogg_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if r & 0x80000000 else (r << 1) & 0xFFFFFFFF
        table.append(r)
    return table


OGG_TABLE = _ogg_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _page(packets: list[bytes], granule: int, seq: int, flags: int) -> bytes:
    lacing = b"".join(bytes([255] * (len(p) // 255) + [len(p) % 255]) for p in packets)
    head = b"OggS\0" + bytes([flags]) + struct.pack("<qIII", granule, 1, seq, 0) + bytes([len(lacing)]) + lacing
    page = head + b"".join(packets)
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def opus_bomb(hours: float) -> bytes:
    """Ogg Opus of two-byte packets, each six empty 20 ms frames (what a decoder conceals as silence)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    pages = [_page([head], 0, 0, 2), _page([b"OpusTags" + struct.pack("<I", 0) + struct.pack("<I", 0)], 0, 1, 0)]
    packet = bytes([(15 << 3) | 3, 6])  # TOC: CELT fullband 20 ms, code 3; six frames, CBR, zero bytes each
    count, granule, seq = int(hours * 3600 / 0.12), 0, 2
    for start in range(0, count, 255):
        n = min(255, count - start)
        granule += n * 5760
        pages.append(_page([packet] * n, granule, seq, 4 if start + n >= count else 0))
        seq += 1
    return b"".join(pages)


PROBE = """
import json, sys, time
from pathlib import Path
from models.errors import AvatarError
def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) // 1024
def animate(data):
    from models.media.decode import decode_audio_file
    decode_audio_file(data, 300)
def transcribe(data):
    from models.asr.audio import prepare_audio
    prepare_audio(data, None, 16000, 60)
def clone(data):
    from models.tts.voices import check_clip
    check_clip(data)
route = {"animate": animate, "transcribe": transcribe, "clone": clone}[sys.argv[2]]
data = Path(sys.argv[1]).read_bytes()
import av, numpy, soxr  # loaded before the baseline
before, start = hwm(), time.perf_counter()
try:
    route(data)
    status, message = 200, ""
except AvatarError as e:
    status, message = e.status, e.message
print(json.dumps({"status": status, "message": message, "ms": (time.perf_counter() - start) * 1000,
                  "grew_mb": hwm() - before}))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio-bombs")
    made = {
        "flac, 3 h, length stated": flac_bomb(3, declared=True),
        "flac, 3 h, length unknown": flac_bomb(3, declared=False),
        "opus, 1 h": opus_bomb(1),
    }
    paths = {}
    for i, (name, data) in enumerate(made.items()):
        paths[name] = folder / f"bomb{i}"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("route", ["animate", "transcribe", "clone"])
@pytest.mark.parametrize("bomb", ["flac, 3 h, length stated", "flac, 3 h, length unknown", "opus, 1 h"])
def test_hours_of_silence_are_refused_without_decoding_them(bombs, bomb, route):
    assert bombs[bomb].stat().st_size < 100_000  # a small upload: 21 KB of FLAC, 93 KB of Opus
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(bombs[bomb]), route], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 413 and "long" in result["message"], result
    assert result["ms"] < 500, result  # at most the first minutes are decoded (20-60 ms here), never the hours
    assert result["grew_mb"] < 60, result  # 5-16 MB here


def test_the_bombs_are_real_audio_of_the_stated_length():
    """What the limit refuses is what the bomb claims: decoded with a limit above it, an hour of silence."""
    from models.media.decode import decode_audio_file

    flac_s = 72 * RATE // 65535 * 65535 / RATE  # whole frames of 65535 samples
    for data, seconds in ((flac_bomb(0.02, declared=False), flac_s), (opus_bomb(0.02), 72)):  # same construction
        samples, rate = decode_audio_file(data, 300, silent_ok=True)
        assert abs(len(samples) / rate - seconds) < 0.2 and abs(samples).max() < 1e-3
