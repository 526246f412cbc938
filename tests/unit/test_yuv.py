"""RGB to the encoder's YUV 4:2:0: the same luma as FFmpeg's conversion, the chroma averaged over 2x2 blocks, and
back to RGB at least as close to the original as FFmpeg's own round trip."""

from __future__ import annotations

import numpy as np
import pytest

from models.media.yuv import rgb_to_i420, video_frame

pytestmark = pytest.mark.unit


def test_i420_matches_ffmpegs_conversion_and_round_trips_as_well(portrait_rgb):
    import av

    rgb = np.ascontiguousarray(portrait_rgb[:256, :256])
    ours = rgb_to_i420(rgb)
    ffmpeg = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert ours.shape == ffmpeg.shape == (384, 256) and ours.dtype == np.uint8
    assert np.abs(ours[:256].astype(int) - ffmpeg[:256]).max() <= 1  # luma
    assert np.abs(ours[256:].astype(int) - ffmpeg[256:]).mean() < 0.5  # chroma (FFmpeg sites it a little apart)

    def back(yuv):
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24").astype(int)

    assert np.abs(back(ours) - rgb).mean() <= np.abs(back(ffmpeg) - rgb).mean() + 0.05


def test_flat_colours_are_exact_bt601_limited_range():
    white, black = np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)
    assert (rgb_to_i420(white)[:4] == 235).all() and (rgb_to_i420(white)[4:] == 128).all()
    assert (rgb_to_i420(black)[:4] == 16).all() and (rgb_to_i420(black)[4:] == 128).all()
    red = rgb_to_i420(np.tile(np.array([255, 0, 0], np.uint8), (4, 4, 1)))
    assert abs(int(red[0, 0]) - 81) <= 1 and abs(int(red[4, 0]) - 90) <= 1 and abs(int(red[5, 0]) - 240) <= 1
    assert video_frame(white).format.name == "yuv420p"


@pytest.mark.parametrize("size", [6, 130, 1022])  # heights that are not multiples of 4 too
def test_any_even_size_has_ffmpegs_luma_and_block_averaged_chroma(size):
    import av

    rgb = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    ours = rgb_to_i420(rgb)
    ffmpeg = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert ours.shape == ffmpeg.shape == (size * 3 // 2, size)
    assert np.abs(ours[:size].astype(int) - ffmpeg[:size]).max() <= 1
    half = size // 2
    blocks = rgb.astype(np.float64).reshape(half, 2, half, 2, 3).mean((1, 3))  # each 2x2 block's colour
    cb = blocks @ np.array([-0.148223, -0.290993, 0.439216]) + 128
    cr = blocks @ np.array([0.439216, -0.367788, -0.071427]) + 128
    plane = ours.reshape(-1)[size * size :]
    assert np.abs(plane[: half * half].astype(float) - cb.reshape(-1)).max() <= 1
    assert np.abs(plane[half * half :].astype(float) - cr.reshape(-1)).max() <= 1
    assert video_frame(rgb).width == size
