"""Small generated inputs shared by several test modules."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import soundfile as sf


def speech_like_clip(seconds: float = 4.0, sr: int = 22050, silent: bool = False) -> bytes:
    """WAV bytes of an amplitude-modulated tone (a stand-in for a reference voice clip)."""
    t = np.arange(int(seconds * sr)) / sr
    audio = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 160 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def fmp4_stream(frames: np.ndarray, audio: np.ndarray, sr: int, fps: float, chunk: int = 5) -> bytes:
    """A stream as the live route makes it: chunks of frames encoded apart, muxed with the audio (one fragment
    per chunk, each opening with a keyframe, and a last one with the rest of the audio)."""
    from models.media.fragments import FragmentMuxer, encode_chunk

    mux = FragmentMuxer(frames.shape[2], frames.shape[1], fps, sr)
    mux.add_audio(audio, sr)
    out = b"".join(mux.add_video(encode_chunk(frames[i : i + chunk], i, fps)) for i in range(0, len(frames), chunk))
    return out + mux.close()


def skip_tier(items, marker: str, reason: str | None) -> None:
    """Mark every collected test of a tier skipped with one reason (a tier that lacks its tools: chromium, podman)."""
    import pytest

    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if marker in item.keywords:
            item.add_marker(skip)


def stream_cut_by(api_url: str, body: dict, kill: Callable[[], object], timeout: float = 60) -> bytes:
    """POST `body` to the API's stream, call `kill` (a dependency goes away) when the first bytes arrive, and read
    on: the bytes received. The body must end incomplete (a cut chunked body, never a clean end)."""
    received = b""
    request = httpx.stream("POST", api_url + "/api/v1/stream", json=body, timeout=timeout)
    with pytest.raises(httpx.RemoteProtocolError), request as r:
        assert r.status_code == 200
        for data in r.iter_raw():
            if not received:
                kill()
            received += data
    return received
