"""Metric functions on plain arrays (per-frame tracks, audio samples): easy to test with known answers."""

from __future__ import annotations

import numpy as np


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def av_offset(mouth: np.ndarray, envelope: np.ndarray, fps: float, max_lag_s: float = 0.4) -> dict:
    """Correlation of mouth opening with the audio envelope, and the lag of the best match.

    offset_ms > 0 means the mouth moves after the sound (video late). With no mouth motion or a silent track,
    correlation is 0 and offset is None.
    """
    m, e = _z(mouth), _z(envelope)
    n = min(len(m), len(e))
    if n < 3 or not m[:n].any() or not e[:n].any():
        return {"lip_sync_corr": 0.0, "av_offset_ms": None, "lip_sync_corr_at_0": 0.0}
    m, e = m[:n], e[:n]
    max_lag = int(round(max_lag_s * fps))
    corrs = {}
    for lag in range(-max_lag, max_lag + 1):
        a, b = (m[lag:], e[: n - lag]) if lag >= 0 else (m[: n + lag], e[-lag:])
        if len(a) > 2:
            corrs[lag] = float(np.mean(a * b) / max(np.std(a) * np.std(b), 1e-9) if a.std() and b.std() else 0.0)
    best = max(corrs, key=corrs.get)
    return {"lip_sync_corr": round(corrs[best], 4), "av_offset_ms": round(best / fps * 1000, 1),
            "lip_sync_corr_at_0": round(corrs.get(0, 0.0), 4)}  # fmt: skip


def vowel_envelope(audio: np.ndarray, sr: int, fps: float, n_frames: int, band=(300.0, 1000.0)) -> np.ndarray:
    """Per video frame: the audio's energy (RMS) between 300 and 1000 Hz, where an open vowel's first formant lies.

    Loudness alone is blind where speech stays voiced between vowels (nasals, laterals, taps: eSpeak's Spanish):
    those murmurs are loud below 300 Hz but weak in this band, so it follows the vowels, hence the jaw, more
    closely. Windows of two frames centred on each frame, Hann-weighted."""
    hop = sr / fps
    win = max(int(2 * hop), 8)
    freqs = np.fft.rfftfreq(win, 1 / sr)
    sel = (freqs >= band[0]) & (freqs < band[1])
    pad = np.pad(np.asarray(audio, np.float32), (win, win))
    starts = (np.arange(n_frames) + 0.5) * hop - win / 2 + win
    frames = np.stack([pad[int(a) : int(a) + win] for a in starts]) if n_frames else np.zeros((0, win), np.float32)
    power = np.abs(np.fft.rfft(frames * np.hanning(win), axis=1)) ** 2
    return np.sqrt(power[:, sel].sum(axis=1) / win).astype(np.float32)


def mouth_in_pauses(mouth: np.ndarray, envelope: np.ndarray, fps: float, min_pause_s: float = 0.12) -> dict:
    """Mean mouth opening (fraction of face height) in the pauses and in speech. A pause is a run of at least
    `min_pause_s` of frames quieter than a tenth of the speech level (the 95th percentile of the loudness): the
    short silences of stop closures are not pauses (the mouth is rightly open for a k or a t)."""
    mouth, envelope = np.asarray(mouth, np.float64), np.asarray(envelope, np.float64)
    n = min(len(mouth), len(envelope))
    mouth, envelope = mouth[:n], envelope[:n]
    quiet = envelope < 0.1 * (np.percentile(envelope, 95) if n else 0.0)
    pause = np.zeros(n, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if (b - a) / fps >= min_pause_s:
            pause[a:b] = True
    speech = envelope >= 0.25 * (np.percentile(envelope, 95) if n else 0.0)
    paused = round(float(mouth[pause].mean()), 4) if pause.any() else None
    spoken = round(float(mouth[speech].mean()), 4) if speech.any() else None
    return {"mouth_pause": paused, "mouth_speech": spoken}


def blinks_per_minute(eye_openness: np.ndarray, fps: float, closed_ratio: float = 0.85) -> float:
    """Blink onsets (eye openness dropping below `closed_ratio` of its median) per minute of video.

    Face Mesh under-reads closed lids (its eye landmarks keep some opening), so a blink shows as a dip to about
    3/4 of the open value rather than to zero; 0.85 separates the two on real and rendered faces."""
    x = np.asarray(eye_openness, np.float64)
    if len(x) < 2 or np.median(x) <= 0:
        return 0.0
    closed = x < closed_ratio * np.median(x)
    onsets = int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])
    return round(onsets / (len(x) / fps) * 60, 2)


def jitter(track: np.ndarray) -> float:
    """RMS of the frame-to-frame acceleration of a (n, d) trajectory (in its own units per frame^2)."""
    t = np.asarray(track, np.float64).reshape(len(track), -1)
    if len(t) < 3:
        return 0.0
    return float(np.sqrt(np.mean(np.diff(t, 2, axis=0) ** 2)))


def audio_checks(audio: np.ndarray, sr: int, frame_s: float = 0.02, silence_db: float = -50.0) -> dict:
    """Clipping, silence and loudness of the audio track."""
    a = np.asarray(audio, np.float64)
    if not len(a):
        return {"clipping_ratio": 0.0, "silence_ratio": 1.0, "loudness_dbfs": None}
    hop = max(1, int(sr * frame_s))
    frames = a[: len(a) // hop * hop].reshape(-1, hop) if len(a) >= hop else a[None]
    rms_db = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12)
    voiced = rms_db > silence_db
    loud = 20 * np.log10(np.sqrt(np.mean(frames[voiced] ** 2)) + 1e-12) if voiced.any() else None
    return {"clipping_ratio": round(float(np.mean(np.abs(a) >= 0.999)), 6),
            "silence_ratio": round(float(1 - voiced.mean()), 4),
            "loudness_dbfs": None if loud is None else round(float(loud), 2)}  # fmt: skip


def container_checks(info: dict, fps_expected: float | None = None) -> dict:
    """Codecs, frame rate and A/V durations from `models.media.probe` output."""
    mismatch = abs(info["video_duration_s"] - info["audio_duration_s"])
    ok = info["video_codec"] == "h264" and info["audio_codec"] == "aac" and info["pix_fmt"] == "yuv420p"
    ok = ok and mismatch <= 1.0 / info["fps"] + 1e-6
    if fps_expected:
        ok = ok and abs(info["fps"] - fps_expected) < 0.01
    expected_frames = info["audio_duration_s"] * info["fps"]
    return {"video_codec": info["video_codec"], "audio_codec": info["audio_codec"], "fps": info["fps"],
            "n_frames": info["n_frames"], "frames_vs_audio": round(info["n_frames"] - expected_frames, 2),
            "av_duration_mismatch_ms": round(mismatch * 1000, 1), "container_ok": bool(ok)}  # fmt: skip
