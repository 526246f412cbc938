"""Per-frame animation controls: mouth shapes from phoneme timings (or audio energy), blinks and head motion.

Everything is computed for the whole utterance at once and smoothed with zero-phase filters, so no frame
jitters against its neighbours and the same input always gives the same motion (seeded randomness).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.avatar.warp import Pose

# Viseme targets (jaw opening 0..1, width -1 rounded .. +1 spread) for Piper/eSpeak IPA symbols.
_VOWELS = {
    "a": (0.95, 0.2), "ɑ": (1.0, 0.0), "æ": (0.85, 0.45), "ʌ": (0.75, 0.1), "ɐ": (0.7, 0.1), "ɒ": (0.85, -0.3),
    "ə": (0.45, 0.0), "ɚ": (0.4, -0.3), "ɜ": (0.5, -0.2), "ɛ": (0.6, 0.5), "e": (0.5, 0.6), "ɪ": (0.35, 0.6),
    "i": (0.25, 0.9), "ɔ": (0.7, -0.7), "o": (0.55, -0.85), "ʊ": (0.3, -0.8), "u": (0.25, -1.0), "y": (0.25, -0.9),
    "ɨ": (0.3, 0.3), "ɤ": (0.45, 0.1), "ø": (0.4, -0.7), "œ": (0.55, -0.5),
}  # fmt: skip
_CONSONANTS = {
    "m": (0.0, 0.0), "b": (0.0, 0.0), "p": (0.0, 0.0),  # bilabials: lips closed (enforced, see below)
    "f": (0.1, 0.15), "v": (0.1, 0.15), "θ": (0.22, 0.1), "ð": (0.22, 0.1),
    "w": (0.15, -0.95), "ʍ": (0.15, -0.95), "ʃ": (0.2, -0.5), "ʒ": (0.2, -0.5), "ɹ": (0.22, -0.35), "r": (0.25, 0.0),
    "s": (0.15, 0.4), "z": (0.15, 0.4), "t": (0.2, 0.2), "d": (0.2, 0.2), "n": (0.2, 0.1), "l": (0.3, 0.1),
    "ɾ": (0.25, 0.1), "k": (0.3, 0.0), "g": (0.3, 0.0), "ɡ": (0.3, 0.0), "ŋ": (0.25, 0.0), "h": (0.4, 0.0),
    "j": (0.2, 0.5), "x": (0.3, 0.0), "ɲ": (0.2, 0.2), "ʎ": (0.25, 0.2), "β": (0.1, 0.0), "ʔ": (0.2, 0.0),
}  # fmt: skip
BILABIAL = frozenset("mbp")
SILENCE = frozenset("^$_.,;:!?¡¿…—-\"'()") | {"", "\n"}
CARRY = frozenset("ːˑ̃ ")  # length marks and word gaps: they hold the previous shape
STRESS = frozenset("ˈˌ")  # stress marks come before their vowel: they take the next shape


@dataclass(frozen=True)
class MotionConfig:
    """How lively the face is. Amplitudes are in degrees or fractions of the face size."""

    blink_interval: tuple[float, float] = (2.0, 6.0)  # seconds between blinks
    blink_duration: float = 0.15
    idle_roll: float = 1.2  # degrees
    idle_shift: float = 0.012
    nod: float = 0.012  # speech-linked nod depth
    coarticulation: float = 0.028  # smoothing time constant of the mouth, seconds
    jaw_gain: float = 1.5  # smoothing flattens the peaks; this restores a visibly moving mouth
    seed: int = 0


@dataclass(frozen=True)
class Segment:
    symbol: str
    start: float
    duration: float


@dataclass
class Controls:
    """Per-frame control tracks for one utterance (all of length n_frames)."""

    jaw: np.ndarray
    wide: np.ndarray
    blink: np.ndarray
    head: np.ndarray  # (n, 4): roll deg, dx, dy, scale

    def __len__(self) -> int:
        return len(self.jaw)

    def pose(self, i: int) -> Pose:
        r, dx, dy, s = self.head[i]
        return Pose(
            float(self.jaw[i]),
            float(self.wide[i]),
            float(self.blink[i]),
            float(r),
            float(dx),
            float(dy),
            float(s),
        )


def viseme(symbol: str) -> tuple[float, float] | None:
    """(jaw, wide) target of one phoneme symbol; None for marks that only carry their neighbours."""
    if symbol in CARRY or symbol in STRESS:
        return None
    if symbol in SILENCE:
        return (0.0, 0.0)
    found = _VOWELS.get(symbol) or _CONSONANTS.get(symbol)
    if found is None and len(symbol) > 1:  # eSpeak gives stressed and multi-letter phonemes ("ˈa", "ɑu", "ɕjˈe")
        vowels = [_VOWELS[c] for c in symbol if c in _VOWELS]
        found = max(vowels) if vowels else _CONSONANTS.get(symbol.strip("ˈˌːˑ")[:1])
    return found or (0.3, 0.0)


def _gaussian(x: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing with edge padding."""
    if sigma_samples < 0.5:
        return x
    r = int(3 * sigma_samples) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_samples) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def mouth_from_phonemes(segments: Sequence[Segment], n_frames: int, fps: float, cfg: MotionConfig, rest: float):
    """Jaw and width tracks: piecewise targets at 200 Hz, smoothed (coarticulation), closures enforced."""
    hz = 200.0
    n = int(np.ceil(n_frames / fps * hz)) + 1
    jaw, wide, closed = np.full(n, rest, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    last = (rest, 0.0)
    segments = _stress_ahead(list(segments))
    for seg in segments:
        a, b = int(seg.start * hz), max(int((seg.start + seg.duration) * hz), int(seg.start * hz) + 1)
        target = viseme(seg.symbol)
        target = last if target is None else target
        if target == (0.0, 0.0) and seg.symbol in SILENCE:
            target = (rest, 0.0)
        jaw[a:b], wide[a:b] = target
        closed[a:b] = seg.symbol in BILABIAL
        last = target
    jaw = _gaussian(jaw, cfg.coarticulation * hz)
    wide = _gaussian(wide, cfg.coarticulation * hz)
    # a bilabial shorter than a frame must still shut the lips on the frame it falls in
    closure = _per_frame(_gaussian(closed, 0.01 * hz), hz, n_frames, fps, np.max)
    jaw_f = np.clip(_per_frame(jaw, hz, n_frames, fps, np.mean) * cfg.jaw_gain, 0, 1)
    jaw_f *= 1 - np.clip(closure * 2.0, 0, 1)
    return jaw_f.astype(np.float32), _per_frame(wide, hz, n_frames, fps, np.mean)


def _stress_ahead(segments: list[Segment]) -> list[Segment]:
    """A stress mark (Piper gives it a duration of its own) is the onset of the vowel after it: give it that vowel."""
    out = list(segments)
    for i in range(len(out) - 1, -1, -1):
        if out[i].symbol in STRESS and i + 1 < len(out):
            out[i] = Segment(out[i + 1].symbol, out[i].start, out[i].duration)
    return out


def _per_frame(track: np.ndarray, hz: float, n_frames: int, fps: float, reduce) -> np.ndarray:
    """Reduce a fine track over each frame's time window (max keeps a short closure visible)."""
    edges = np.minimum((np.arange(n_frames + 1) / fps * hz).astype(int), len(track) - 1)
    return np.array([reduce(track[a : max(b, a + 1)]) for a, b in zip(edges[:-1], edges[1:], strict=True)], np.float32)


def mouth_from_energy(envelope: np.ndarray, fps: float, cfg: MotionConfig, rest: float):
    """Fallback for engines without timings: opening follows the loudness (in dB) of each frame."""
    db = 20 * np.log10(np.maximum(envelope, 1e-5))
    top = np.percentile(db, 95) if len(db) else 0.0
    jaw = np.clip((db - (top - 30)) / 30, 0, 1) ** 1.5
    jaw = _gaussian(jaw.astype(np.float32), cfg.coarticulation * fps)
    jaw = np.where(envelope < 1e-3, rest, np.maximum(jaw, 0.0))
    return jaw.astype(np.float32), np.zeros_like(jaw, np.float32)


def blinks(n_frames: int, fps: float, cfg: MotionConfig, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure per frame: a blink every 2-6 s, ~150 ms, starting on a frame so one frame is fully shut."""
    out = np.zeros(n_frames, np.float32)
    t = rng.uniform(0.6, cfg.blink_interval[0])  # first blink soon, so short clips blink too
    shape = np.array([0.55, 1.0, 0.7, 0.3], np.float32)  # at 25 fps; resampled for other rates
    length = max(3, int(round(cfg.blink_duration * fps)) + 1)
    curve = np.interp(np.linspace(0, 1, length), np.linspace(0, 1, len(shape)), shape).astype(np.float32)
    curve[int(np.argmax(curve))] = 1.0
    while t < n_frames / fps:
        i = int(t * fps)
        seg = curve[: max(0, min(length, n_frames - i))]
        out[i : i + len(seg)] = np.maximum(out[i : i + len(seg)], seg)
        t += rng.uniform(*cfg.blink_interval)
    return out


def head_motion(envelope: np.ndarray, fps: float, cfg: MotionConfig, rng: np.random.Generator) -> np.ndarray:
    """Idle sway (a few slow incommensurate sines per axis) plus small nods that follow speech emphasis."""
    n = len(envelope)
    t = np.arange(n) / fps
    out = np.zeros((n, 4), np.float32)
    amps = (cfg.idle_roll, cfg.idle_shift, cfg.idle_shift * 0.6, 0.004)
    for axis, amp in enumerate(amps):
        freqs = rng.uniform(0.08, 0.45, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = np.array([0.6, 0.3, 0.1])
        out[:, axis] = amp * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    emphasis = envelope / (np.percentile(envelope, 95) + 1e-6) if n else envelope
    nod = _gaussian(np.clip(emphasis, 0, 1.5).astype(np.float32), 0.18 * fps)
    out[:, 2] += cfg.nod * (nod - nod.mean() if n else nod)
    out[:, 3] += 0.3 * cfg.nod * nod
    return out


def build_controls(
    n_frames: int,
    fps: float,
    envelope: np.ndarray,
    segments: Sequence[Segment] | None,
    cfg: MotionConfig,
    rest: float = 0.0,
) -> Controls:
    """All tracks for one utterance. `envelope` is the per-frame RMS of the audio."""
    rng = np.random.default_rng(cfg.seed)
    if segments:
        jaw, wide = mouth_from_phonemes(segments, n_frames, fps, cfg, rest)
    else:
        jaw, wide = mouth_from_energy(envelope, fps, cfg, rest)
    return Controls(jaw, wide, blinks(n_frames, fps, cfg, rng), head_motion(envelope, fps, cfg, rng))
