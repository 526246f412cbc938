"""RGB frames into the encoder's YUV 4:2:0 (BT.601, limited range: what FFmpeg's own conversion gives) in about
half the time FFmpeg takes at 512x512: OpenCV writes the luma, and the chroma comes from the colour averaged over
each 2x2 block (OpenCV's own 4:2:0 conversion samples one pixel of four, which frays coloured edges)."""

from __future__ import annotations

import numpy as np

# Cb and Cr of BT.601 in limited range (16-240), from 8-bit RGB: one row each, with the offset
_CHROMA = np.array([[-0.148223, -0.290993, 0.439216, 128.0], [0.439216, -0.367788, -0.071427, 128.0]], np.float32)


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, H and W even -> (H * 3 / 2, W) uint8: the Y plane, then U, then V (I420)."""
    import cv2  # not at import: the API image muxes streams without OpenCV

    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    chroma = cv2.transform(cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA), _CHROMA)
    flat, luma, n = yuv.reshape(-1), h * w, (h // 2) * (w // 2)  # planes follow each other (not whole rows
    flat[luma : luma + n] = chroma[..., 0].reshape(-1)  # when h is not a multiple of 4, e.g. 1022)
    flat[luma + n :] = chroma[..., 1].reshape(-1)
    return yuv


def video_frame(rgb: np.ndarray):
    """A PyAV frame in yuv420p, ready for x264 (no conversion left for FFmpeg to do)."""
    import av

    return av.VideoFrame.from_ndarray(rgb_to_i420(np.ascontiguousarray(rgb)), format="yuv420p")
