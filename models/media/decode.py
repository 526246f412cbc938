"""Uploaded audio files, decoded with FFmpeg (PyAV) and bounded: the length is read from the container before
any sample is decoded, and decoding stops the moment it passes the limit (a header may lie or be missing).
A few KB of an hours-long silent Opus file is refused in milliseconds, not decoded into gigabytes."""

from __future__ import annotations

import io

import numpy as np

from models.errors import InvalidInput, PayloadTooLarge

FORMATS = ["wav", "mp3", "ogg (opus, vorbis)", "flac", "m4a (aac)", "webm (opus)"]
MIN_SECONDS = 0.1
SILENT_DBFS = -60.0  # quieter than this throughout: nothing to animate
MAX_RATE = 48000


def decode_audio_file(
    data: bytes, max_seconds: float, field: str = "audio", silent_ok: bool = False
) -> tuple[np.ndarray, int]:
    """float32 mono samples and their rate; refused when not audio, too short, too long or (unless `silent_ok`,
    as for speech recognition) silent. Every upload of audio comes through here: clips to animate, to transcribe
    and to clone a voice from."""
    import av

    if not data:
        raise InvalidInput("the audio file is empty", allowed=FORMATS, field=field)
    try:
        container = av.open(io.BytesIO(data), metadata_errors="ignore")
    except Exception as exc:  # noqa: BLE001  (PyAV raises many types for data that is not a media file)
        raise InvalidInput("the file is not readable audio", allowed=FORMATS, field=field) from exc
    with container:
        if not container.streams.audio:
            raise InvalidInput("the file has no audio track", allowed=FORMATS, field=field)
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        if declared is not None and declared > max_seconds:
            raise _too_long(declared, max_seconds, field)
        samples, rate = _decode(container, stream, max_seconds, field)
    return _checked(samples, rate, max_seconds, field, silent_ok)


def _declared_seconds(container, stream) -> float | None:
    """The length the container states (the stream's, else the file's), without decoding."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _decode(container, stream, max_seconds: float, field: str) -> tuple[np.ndarray, int]:
    import av

    rate = min(stream.rate or 16000, MAX_RATE)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts, total, limit = [], 0, int(max_seconds * rate) + rate // 10
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
                total += len(parts[-1])
            if total > limit:  # the header said less (or nothing): stop here, not at the end of the file
                raise _too_long(total / rate, max_seconds, field)
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise InvalidInput(f"the audio could not be decoded: {exc}", allowed=FORMATS, field=field) from exc
    if not parts:
        raise InvalidInput("the file has no audio samples", allowed=FORMATS, field=field)
    return np.concatenate(parts).astype(np.float32, copy=False), rate


def _checked(samples: np.ndarray, rate: int, max_seconds: float, field: str, silent_ok: bool) -> tuple[np.ndarray, int]:
    seconds = len(samples) / rate
    if seconds > max_seconds:
        raise _too_long(seconds, max_seconds, field)
    if seconds < MIN_SECONDS:
        raise InvalidInput(f"the audio is {seconds:.2f} s long", allowed=f"{MIN_SECONDS}-{max_seconds:g} s",
                           field=field)  # fmt: skip
    samples = np.nan_to_num(np.clip(samples, -1, 1))
    if not silent_ok and 20 * np.log10(float(np.abs(samples).max()) + 1e-12) < SILENT_DBFS:
        raise InvalidInput("the audio is silent: there is nothing to lip-sync",
                           allowed=f"speech louder than {SILENT_DBFS:g} dBFS", field=field)  # fmt: skip
    return samples, rate


def _too_long(seconds: float, max_seconds: float, field: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the audio is {seconds:.1f} s long (at most {max_seconds:g} s)",
                           allowed=f"at most {max_seconds:g} s", field=field)  # fmt: skip
