"""Decoding and checking user-supplied portrait images.

The size is read from the file's header (Pillow's lazy open decodes no pixel) before OpenCV decodes anything: a
30000x30000 PNG is 2.7 MB on the wire and ~2.7 GB decoded, so it must be refused from its header, in
milliseconds and without memory.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

from models.errors import InvalidInput, PayloadTooLarge

FORMATS = ["png", "jpeg", "webp", "bmp", "tiff"]
MAX_PIXELS = 40_000_000
MIN_SIDE = 64
PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp", "BMP": "bmp", "DIB": "bmp", "TIFF": "tiff"}


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header of an accepted format; no pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
                kind, (width, height) = im.format, im.size
    except Image.DecompressionBombError:  # Pillow's own limit (~179 megapixels), far above ours
        raise PayloadTooLarge(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels", field="avatar") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidInput("the file is not a readable image", allowed=FORMATS, field="avatar") from None
    if kind not in PIL_FORMATS:
        raise InvalidInput(f"images in {kind} are not accepted", allowed=FORMATS, field="avatar")
    return width, height


def load_image(source: str | Path | bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path or encoded bytes; a clear error for anything that is not a usable photo."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"image file not found: {path}", field="avatar")
        data = path.read_bytes()
    else:
        data = source
    width, height = header_size(data)
    if width * height > MAX_PIXELS:
        raise PayloadTooLarge(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels", field="avatar")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInput("the file is not a readable image", allowed=FORMATS, field="avatar")
    if bgr.shape[0] * bgr.shape[1] > MAX_PIXELS:  # a header that lied (OpenCV decodes what the data says)
        raise PayloadTooLarge(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels", field="avatar")
    if min(bgr.shape[:2]) < MIN_SIDE:
        raise InvalidInput(f"image is smaller than {MIN_SIDE}x{MIN_SIDE} pixels", field="avatar")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
