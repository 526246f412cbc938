"""Audio in and out: decoding uploads, WAV/PCM/FLAC/MP3/Opus encoding, resampling, loudness envelopes."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from models.errors import InvalidInput

READ_FORMATS = ["wav", "flac", "ogg", "mp3"]
ENCODE_FORMATS = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
}


def read_audio(source: str | Path | bytes | BinaryIO) -> tuple[np.ndarray, int]:
    """float32 mono in [-1, 1] and its sample rate (stereo is mixed down)."""
    import soundfile as sf

    data = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        audio, sr = sf.read(data, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidInput("the file is not readable audio", allowed=READ_FORMATS, field="audio") from exc
    return audio.mean(axis=1).astype(np.float32), int(sr)


def pcm16_bytes(audio: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM, clipped."""
    return (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    return encode_audio(audio, sample_rate, "wav")[0]


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV, written atomically (a reader never sees half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".wav.part")
    with os.fdopen(fd, "wb") as f:
        f.write(wav_bytes(audio, sample_rate))
    os.replace(tmp, path)


def encode_audio(audio: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, str]:
    """(bytes, content type) in one of ENCODE_FORMATS."""
    if fmt not in ENCODE_FORMATS:
        raise InvalidInput(f"unknown audio format {fmt!r}", allowed=sorted(ENCODE_FORMATS), field="response_format")
    if fmt == "pcm":
        return pcm16_bytes(audio), ENCODE_FORMATS[fmt]
    import soundfile as sf

    buf = io.BytesIO()
    clipped = np.clip(audio, -1.0, 1.0)
    if fmt == "opus":  # Opus runs at 48 kHz (8/12/16/24 too); resample anything else
        rate = sample_rate if sample_rate in (8000, 12000, 16000, 24000, 48000) else 48000
        sf.write(buf, resample(clipped, sample_rate, rate), rate, format="OGG", subtype="OPUS")
    else:
        subtype = {"wav": "PCM_16", "flac": "PCM_16", "mp3": "MPEG_LAYER_III"}[fmt]
        sf.write(buf, clipped, sample_rate, format={"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}[fmt], subtype=subtype)
    return buf.getvalue(), ENCODE_FORMATS[fmt]


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return audio
    import soxr

    return soxr.resample(audio, sr_in, sr_out).astype(np.float32)


def rms_envelope(
    audio: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None, offset: int = 0
) -> np.ndarray:
    """RMS of the audio under each video frame (float32, one value per frame). `offset`: samples of the track
    before `audio[0]` (a stream that forgot its past); frames before it read as silent."""
    n = n_frames if n_frames is not None else int(np.ceil((offset + len(audio)) / sample_rate * fps))
    edges = np.clip((np.arange(n + 1) * sample_rate / fps).astype(np.int64) - offset, 0, len(audio))
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    return np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / counts).astype(np.float32)
