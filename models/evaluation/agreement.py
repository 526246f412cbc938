"""How well a mouth made from audio agrees with the one made from the TTS engine's own phoneme timings (the
ground truth: Piper and eSpeak know when they said each phoneme). Loudness cannot fool these measures: it
never shuts the lips on m/b/p and never rounds or spreads them.

- jaw and width correlation, frame by frame, at the video's frame rate (what is rendered);
- bilabial closures: runs of frames whose lips are shut (jaw below 0), recalled and precise within one frame;
- onset error: where the mouth opens (after a closure or a pause), at 10 ms resolution, matched within 120 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.avatar.controls import MotionConfig, build_controls
from models.avatar.visemes import Segment
from models.media.audio import rms_envelope
from models.tts.base import Phoneme

FINE_FPS = 100.0  # onsets are read at 10 ms
OPEN = 0.15  # jaw opening that counts as open
ONSET_MATCH_S = 0.12


@dataclass(frozen=True)
class MouthTracks:
    jaw: np.ndarray
    wide: np.ndarray


def mouth_tracks(phonemes: Sequence[Phoneme] | None, audio: np.ndarray, sr: int, fps: float) -> MouthTracks:
    """The renderer's jaw and width tracks for this audio (phonemes None: the loudness fallback)."""
    n = int(round(len(audio) / sr * fps))
    segments = None if phonemes is None else [Segment(p.symbol, p.start, p.duration) for p in phonemes]
    c = build_controls(n, fps, rms_envelope(audio, sr, fps, n), segments, MotionConfig())
    return MouthTracks(c.jaw, c.wide)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if n < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _overlaps(run: tuple[int, int], others: list[tuple[int, int]], slack: int = 1) -> bool:
    return any(a - slack < run[1] and run[0] < b + slack for a, b in others)


def closures(ref: np.ndarray, test: np.ndarray) -> dict:
    """Recall and precision of shut-lip runs (jaw < 0), each matched within one frame."""
    r, t = _runs(ref < 0), _runs(test < 0)
    recall = sum(_overlaps(x, t) for x in r) / len(r) if r else None
    precision = sum(_overlaps(x, r) for x in t) / len(t) if t else (None if not r else 0.0)
    return {"closures": len(r), "closure_recall": recall, "closure_precision": precision}


def onsets(jaw: np.ndarray) -> np.ndarray:
    """Frames where the mouth opens: the jaw rises through OPEN."""
    return np.flatnonzero((jaw[1:] >= OPEN) & (jaw[:-1] < OPEN)) + 1


def onset_error_ms(ref_jaw: np.ndarray, test_jaw: np.ndarray, fps: float) -> float | None:
    """Median distance from each opening of the reference to the nearest of the test, if within 120 ms."""
    r, t = onsets(ref_jaw), onsets(test_jaw)
    if not len(r) or not len(t):
        return None
    gaps = np.abs(r[:, None] - t[None, :]).min(1) / fps
    near = gaps[gaps <= ONSET_MATCH_S]
    return float(np.median(near) * 1000) if len(near) else None


def compare(reference: Sequence[Phoneme], test: Sequence[Phoneme] | None, audio: np.ndarray, sr: int,
            fps: float = 25.0) -> dict:  # fmt: skip
    """Every measure of `test` (None: the loudness fallback) against `reference`, on the same audio."""
    ref, got = mouth_tracks(reference, audio, sr, fps), mouth_tracks(test, audio, sr, fps)
    fine_ref, fine_got = (mouth_tracks(p, audio, sr, FINE_FPS).jaw for p in (reference, test))
    out = {"jaw_corr": _corr(ref.jaw, got.jaw), "width_corr": _corr(ref.wide, got.wide)}
    out |= closures(ref.jaw, got.jaw)
    onset = onset_error_ms(fine_ref, fine_got, FINE_FPS)
    out["onset_ms"] = onset
    out["onsets_matched"] = _matched_share(fine_ref, fine_got)
    return out


def _matched_share(ref_jaw: np.ndarray, test_jaw: np.ndarray) -> float | None:
    r, t = onsets(ref_jaw), onsets(test_jaw)
    if not len(r):
        return None
    if not len(t):
        return 0.0
    return float(np.mean(np.abs(r[:, None] - t[None, :]).min(1) / FINE_FPS <= ONSET_MATCH_S))
