"""Decoding and checking user-supplied portrait images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.errors import InvalidInput, PayloadTooLarge

FORMATS = ["png", "jpeg", "webp", "bmp", "tiff"]
MAX_PIXELS = 40_000_000
MIN_SIDE = 64


def load_image(source: str | Path | bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path or encoded bytes; a clear error for anything that is not a usable photo."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"image file not found: {path}", field="avatar")
        data = path.read_bytes()
    else:
        data = source
    buf = np.frombuffer(data, np.uint8)
    header = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_8) if len(buf) else None
    if header is None:
        raise InvalidInput("the file is not a readable image", allowed=FORMATS, field="avatar")
    if header.shape[0] * header.shape[1] * 64 > MAX_PIXELS:
        raise PayloadTooLarge(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels", field="avatar")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if min(bgr.shape[:2]) < MIN_SIDE:
        raise InvalidInput(f"image is smaller than {MIN_SIDE}x{MIN_SIDE} pixels", field="avatar")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
