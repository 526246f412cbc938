"""Clips to listen to: whatever a client uploads, as float32 mono at the recogniser's rate."""

from __future__ import annotations

import numpy as np

from models.errors import InvalidInput, PayloadTooLarge
from models.media.audio import resample
from models.media.decode import decode_audio_file

MIN_SECONDS = 0.1


def decode_clip(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    """Samples and rate of an encoded clip (whatever FFmpeg reads, the containers browsers record in included),
    bounded: a clip longer than `max_seconds` is refused from its header, or as soon as decoding passes it."""
    return decode_audio_file(data, max_seconds, silent_ok=True)


def prepare_audio(
    audio: bytes | np.ndarray, sample_rate: int | None, target_rate: int, max_seconds: float
) -> np.ndarray:
    """float32 mono at `target_rate`, checked for length (at least MIN_SECONDS, at most max_seconds)."""
    if isinstance(audio, bytes | bytearray):
        samples, sample_rate = decode_clip(bytes(audio), max_seconds)
    else:
        if not sample_rate or sample_rate <= 0:
            raise InvalidInput("sample_rate is needed with raw samples", field="sample_rate")
        samples = np.asarray(audio, np.float32)
        samples = samples.mean(axis=1) if samples.ndim == 2 else samples
        if samples.ndim != 1 or not np.isfinite(samples).all():
            raise InvalidInput("samples must be a finite 1-D (or channels-last 2-D) array", field="audio")
    seconds = len(samples) / sample_rate
    if seconds < MIN_SECONDS:
        raise InvalidInput(
            f"the audio is {seconds:.2f} s long (at least {MIN_SECONDS} s)",
            allowed=f"{MIN_SECONDS}-{max_seconds:g} s",
            field="audio",
        )
    if seconds > max_seconds:
        raise PayloadTooLarge(
            f"the audio is {seconds:.1f} s long (at most {max_seconds:g} s)",
            allowed=f"at most {max_seconds:g} s",
            field="audio",
        )
    return resample(samples, sample_rate, target_rate).astype(np.float32, copy=False)
