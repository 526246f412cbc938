"""Decompression bombs: images of a few KB whose headers declare far more pixels than the limit are refused from
the header, in milliseconds and without memory. Each is made here: a 30000x30000 one-bit PNG and TIFF (really
compressed zeros), and JPEG, WebP and BMP headers that declare the largest size their format allows. Each is
loaded in a fresh Python so its peak memory (VmHWM) can be read; the code before the header check decoded each
of them whole (2.7 GB and 12 s for the PNG)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit
SIDE = 30000


def _zeros(row: bytes, rows: int) -> bytes:
    pack = zlib.compressobj(1)
    block = row * 1000
    return b"".join(pack.compress(block) for _ in range(rows // 1000)) + pack.flush()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb() -> bytes:
    """Grayscale, one bit a pixel; each row is a filter byte and 3750 zero bytes."""
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 1, 0, 0, 0, 0)
    idat = _zeros(b"\0" * (1 + SIDE // 8), SIDE)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def tiff_bomb() -> bytes:
    """Little-endian, one bit a pixel, one Deflate strip."""
    strip = _zeros(b"\0" * (SIDE // 8), SIDE)
    tags = [(256, 4, SIDE), (257, 4, SIDE), (258, 3, 1), (259, 3, 8), (262, 3, 1), (273, 4, 0), (277, 3, 1)]
    tags += [(278, 4, SIDE), (279, 4, len(strip))]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(tags) + 4
    tags[5] = (273, 4, data_at)
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    return b"II*\0" + struct.pack("<I", ifd_at) + ifd + b"\0\0\0\0" + strip


def jpeg_bomb() -> bytes:
    """A 16x16 JPEG whose frame header says 30000x30000 (a decoder allocates the frame, then fills it in)."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(data.tobytes())
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", SIDE, SIDE)
    return bytes(data)


def webp_bomb() -> bytes:
    """A lossless 16x16 WebP whose header says 16384x16384, the format's largest."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.find(b"VP8L") + 8  # the chunk's size, then the signature byte 0x2f and 14+14 bits of size - 1
    bits = int.from_bytes(data[at + 1 : at + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | (16383 << 14) | 16383
    data[at + 1 : at + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def bmp_bomb() -> bytes:
    """A BMP header for 30000x30000, 24-bit, with a few bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, SIDE, SIDE, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 14 + 40) + info + bytes(64)


BOMBS = {"png": png_bomb, "tiff": tiff_bomb, "jpeg": jpeg_bomb, "webp": webp_bomb, "bmp": bmp_bomb}

PROBE = """
import json, sys, time
from pathlib import Path
from models.avatar.images import load_image
from models.errors import AvatarError
from PIL import Image, TiffImagePlugin, WebPImagePlugin  # imported before the clock starts, as in a warm worker
def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) // 1024
data = Path(sys.argv[1]).read_bytes()
before, start = hwm(), time.perf_counter()
try:
    load_image(data)
    status, message = 200, ""
except AvatarError as e:
    status, message = e.status, e.message
print(json.dumps({"status": status, "message": message, "ms": (time.perf_counter() - start) * 1000,
                  "grew_mb": hwm() - before}))
"""


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_bomb_is_refused_from_its_header(kind, tmp_path):
    data = BOMBS[kind]()
    assert len(data) < 600_000, len(data)  # a small upload
    (tmp_path / f"bomb.{kind}").write_bytes(data)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / f"bomb.{kind}")], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 413 and "megapixels" in result["message"], result
    assert result["ms"] < 200, result  # from the header: milliseconds, not the seconds a decode takes
    assert result["grew_mb"] < 20, result  # nothing decoded: the decoded PNG alone would be 2.7 GB


def test_a_legal_image_still_loads_in_each_format():
    import cv2

    from models.avatar.images import load_image

    image = np.zeros((80, 96, 3), np.uint8)
    image[:, :48] = (255, 0, 0)
    for ext in (".png", ".jpg", ".webp", ".bmp", ".tiff"):
        ok, data = cv2.imencode(ext, image[:, :, ::-1])
        rgb = load_image(data.tobytes())
        assert rgb.shape == (80, 96, 3) and rgb[40, 10, 0] > 200 and rgb[40, 80, 0] < 50, ext


def test_other_formats_are_refused_by_name():
    from PIL import Image

    from models.avatar.images import load_image
    from models.errors import InvalidInput

    out = io.BytesIO()
    Image.new("RGB", (100, 100)).save(out, "GIF")
    with pytest.raises(InvalidInput, match="GIF") as err:
        load_image(out.getvalue())
    assert "png" in err.value.allowed
