"""Small generated inputs shared by several test modules."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def speech_like_clip(seconds: float = 4.0, sr: int = 22050, silent: bool = False) -> bytes:
    """WAV bytes of an amplitude-modulated tone (a stand-in for a reference voice clip)."""
    t = np.arange(int(seconds * sr)) / sr
    audio = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 160 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), sr, format="WAV")
    return buf.getvalue()
