"""Per-frame animation controls: mouth shapes from phoneme timings (or audio energy), blinks and head motion.

The plan can be made piece by piece as speech arrives (`ControlStream`, for streaming) or for a whole utterance
at once (`build_controls`, the same code fed once). The mouth is smoothed with zero-phase filters and the nods
with a causal one, so no frame jitters against its neighbours and pieces join without jumps; randomness is
seeded, so the same input always gives the same motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
# Tongue tip (rise to the upper teeth, forward between them; 0..1 each): alveolars touch the back of the upper
# teeth, dentals (th) come between the teeth.
_TONGUE_TIP = {
    "θ": (1.0, 1.0), "ð": (1.0, 1.0), "l": (1.0, 0.0), "ɫ": (1.0, 0.0),
    "t": (0.8, 0.0), "d": (0.8, 0.0), "n": (0.8, 0.0), "ɾ": (0.7, 0.0),
}  # fmt: skip
TONGUE_TOUCH = 0.6  # the tongue control where the tip touches the upper teeth; above it, it comes forward (th)
BILABIAL = frozenset("mbp")
SILENCE = frozenset("^$_.,;:!?¡¿…—-\"'()") | {"", "\n"}
CARRY = frozenset("ːˑ̃ ")  # length marks and word gaps: they hold the previous shape
STRESS = frozenset("ˈˌ")  # stress marks come before their vowel: they take the next shape
SECONDARY_STRESS, UNSTRESSED = 0.85, 0.7  # jaw gains of vowels by stress (where the engine marks it)


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
    press: float = 0.6  # how firmly the lips press on m/b/p (a negative jaw: the renderer thins the lips)
    tongue_gain: float = 1.5  # as jaw_gain: a short l or th still lifts the tip to the teeth
    seed: int = 0


@dataclass(frozen=True)
class Pose:
    """Controls of one frame."""

    jaw: float = 0.0  # 0 closed .. 1 wide open; below 0 the closed lips press together (m/b/p), down to -1
    wide: float = 0.0  # -1 rounded (o/u/w) .. +1 spread (i/e)
    blink: float = 0.0  # 0 open .. 1 closed
    roll: float = 0.0  # head roll, degrees
    dx: float = 0.0  # head shift, fraction of face size
    dy: float = 0.0
    scale: float = 0.0  # relative scale change (a nod towards the camera)
    tongue: float = 0.0  # tongue tip: 0 down .. TONGUE_TOUCH up behind the upper teeth .. 1 between the teeth (th)


# Columns of a pose row (Controls.poses); rows of the first 7 (before the tongue) are still accepted.
POSE_COLUMNS = ("jaw", "wide", "blink", "roll", "dx", "dy", "scale", "tongue")
POSE_COLUMNS_OLD = 7


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
    tongue: np.ndarray | None = None  # None: tip down throughout (plans without phonemes)

    def __post_init__(self) -> None:
        if self.tongue is None:
            self.tongue = np.zeros(len(self.jaw), np.float32)

    def __len__(self) -> int:
        return len(self.jaw)

    def slice(self, a: int, b: int) -> Controls:
        return Controls(self.jaw[a:b], self.wide[a:b], self.blink[a:b], self.head[a:b], self.tongue[a:b])

    def poses(self) -> list[list[float]]:
        """Rows of POSE_COLUMNS (jaw, wide, blink, roll, dx, dy, scale, tongue): the compact form sent to a remote
        renderer."""
        return np.column_stack([self.jaw, self.wide, self.blink, self.head, self.tongue]).round(5).tolist()

    @classmethod
    def from_poses(cls, rows: list[list[float]]) -> Controls:
        """Rows of 8 columns, or of 7 from clients made before the tongue (its tip then stays down)."""
        widths = {len(r) for r in rows}
        if not widths <= {POSE_COLUMNS_OLD, len(POSE_COLUMNS)} or len(widths) > 1:
            raise ValueError(f"pose rows have {sorted(widths)} columns; allowed: 7 or 8, the same in every row")
        a = np.asarray(rows, np.float32).reshape(len(rows), max(widths, default=len(POSE_COLUMNS)))
        if a.shape[1] == POSE_COLUMNS_OLD:
            a = np.column_stack([a, np.zeros(len(a), np.float32)])
        return cls(a[:, 0], a[:, 1], a[:, 2], a[:, 3:7], a[:, 7])

    def pose(self, i: int) -> Pose:
        return Pose(*(float(x) for x in (self.jaw[i], self.wide[i], self.blink[i], *self.head[i], self.tongue[i])))


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


def tongue_tip(symbol: str) -> tuple[float, float]:
    """(rise, forward) of the tongue tip for one phoneme: 0..1 each."""
    found = _TONGUE_TIP.get(symbol)
    if found is None and len(symbol) > 1:  # stressed or multi-letter symbols: their first sound
        found = _TONGUE_TIP.get(symbol.strip("ˈˌːˑ")[:1])
    return found or (0.0, 0.0)


def _targets(segments: list[Segment], n: int, hz: float, rest: float) -> np.ndarray:
    """(5, n) piecewise targets at `hz`: jaw, width, tongue rise, tongue forward and lip closure (1 on m/b/p)."""
    out = np.zeros((5, n), np.float32)
    out[0] = rest
    last = (rest, 0.0, 0.0, 0.0)
    marked = any(c in STRESS for seg in segments for c in seg.symbol)
    for seg in _stress_ahead(segments):
        a, b = int(seg.start * hz), max(int((seg.start + seg.duration) * hz), int(seg.start * hz) + 1)
        shape = viseme(seg.symbol)
        if shape is not None:
            shape = (shape[0] * _stress_gain(seg.symbol, marked), shape[1])
        target = last if shape is None else (*shape, *tongue_tip(seg.symbol))
        if shape == (0.0, 0.0) and seg.symbol in SILENCE:
            target = (rest, 0.0, 0.0, 0.0)
        out[:4, a:b] = np.array(target, np.float32)[:, None]
        out[4, a:b] = seg.symbol in BILABIAL
        last = target
    return out


def mouth_from_phonemes(
    segments: Sequence[Segment], n_frames: int, fps: float, cfg: MotionConfig, rest: float, first: int = 0
):
    """Jaw, width and tongue tracks of frames [first, n_frames): piecewise targets at 200 Hz over the whole
    history, smoothed (coarticulation, also across the joins of streamed pieces), closures enforced."""
    hz = 200.0
    n = int(np.ceil(n_frames / fps * hz)) + 1
    jaw, wide, rise, forward, closed = _targets(list(segments), n, hz, rest)
    jaw, wide, rise, forward = (_gaussian(t, cfg.coarticulation * hz) for t in (jaw, wide, rise, forward))
    # how much of each frame a bilabial covers: half a frame shuts the lips, so one shorter than a frame still
    # shuts them on the frame it mostly falls in, and one that only touches a frame leaves that frame open
    closure = _per_frame(closed, hz, first, n_frames, fps, np.mean)
    jaw_f = np.clip(_per_frame(jaw, hz, first, n_frames, fps, np.mean) * cfg.jaw_gain, 0, 1)
    shut = np.clip(closure * 2.0, 0, 1)
    jaw_f = jaw_f * (1 - shut) - cfg.press * shut  # shut, then pressed: the jaw field carries the press below 0
    rise_f, forward_f = (np.clip(_per_frame(t, hz, first, n_frames, fps, np.mean) * cfg.tongue_gain, 0, 1)
                         for t in (rise, forward))  # fmt: skip
    tongue = TONGUE_TOUCH * rise_f + (1 - TONGUE_TOUCH) * forward_f  # one control: up to the teeth, then forward
    return jaw_f.astype(np.float32), _per_frame(wide, hz, first, n_frames, fps, np.mean), tongue.astype(np.float32)


def _stress_ahead(segments: list[Segment]) -> list[Segment]:
    """A stress mark (Piper gives it a duration of its own) is the onset of the vowel after it: give it that vowel,
    and mark the vowel stressed as eSpeak writes it ("ˈa")."""
    out = list(segments)
    for i in range(len(out) - 1, -1, -1):
        if out[i].symbol in STRESS and i + 1 < len(out):
            nxt = out[i + 1]
            stressed = nxt.symbol if nxt.symbol[:1] in STRESS else out[i].symbol + nxt.symbol
            out[i] = Segment(stressed, out[i].start, out[i].duration)
            out[i + 1] = Segment(stressed, nxt.start, nxt.duration)
    return out


def _stress_gain(symbol: str, marked: bool) -> float:
    """Jaw gain of a vowel by its stress: speakers open the jaw wider on stressed syllables, and an unstressed vowel
    is shorter and quieter. Only where the engine marks stress at all (`marked`); consonants are left alone."""
    if not marked or not any(c in _VOWELS for c in symbol):
        return 1.0
    return 1.0 if "ˈ" in symbol else SECONDARY_STRESS if "ˌ" in symbol else UNSTRESSED


def _per_frame(track: np.ndarray, hz: float, first: int, n_frames: int, fps: float, reduce) -> np.ndarray:
    """Reduce a fine track over the time window of each frame in [first, n_frames) (max keeps a short closure
    visible)."""
    edges = np.minimum((np.arange(first, n_frames + 1) / fps * hz).astype(int), len(track) - 1)
    return np.array([reduce(track[a : max(b, a + 1)]) for a, b in zip(edges[:-1], edges[1:], strict=True)], np.float32)


def mouth_from_energy(envelope: np.ndarray, fps: float, cfg: MotionConfig, rest: float):
    """Fallback for engines without timings: opening follows the loudness (in dB) of each frame (width and tongue
    stay neutral)."""
    db = 20 * np.log10(np.maximum(envelope, 1e-5))
    top = np.percentile(db, 95) if len(db) else 0.0
    jaw = np.clip((db - (top - 30)) / 30, 0, 1) ** 1.5
    jaw = _gaussian(jaw.astype(np.float32), cfg.coarticulation * fps)
    jaw = np.where(envelope < 1e-3, rest, np.maximum(jaw, 0.0))
    return jaw.astype(np.float32), np.zeros_like(jaw, np.float32), np.zeros_like(jaw, np.float32)


def blinks(n_frames: int, fps: float, cfg: MotionConfig, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure per frame: a blink every 2-6 s, ~150 ms, starting on a frame so one frame is fully shut."""
    return BlinkSchedule(fps, cfg, rng).take(0, n_frames)


class BlinkSchedule:
    """Blink times drawn ahead as far as asked (so a streamed plan blinks exactly as a whole one would)."""

    def __init__(self, fps: float, cfg: MotionConfig, rng: np.random.Generator):
        self.fps, self.cfg, self.rng = fps, cfg, rng
        self.starts: list[int] = []  # first frame of each blink
        self.next_t = rng.uniform(0.6, cfg.blink_interval[0])  # first blink soon, so short clips blink too
        shape = np.array([0.55, 1.0, 0.7, 0.3], np.float32)  # at 25 fps; resampled for other rates
        length = max(3, int(round(cfg.blink_duration * fps)) + 1)
        self.curve = np.interp(np.linspace(0, 1, length), np.linspace(0, 1, len(shape)), shape).astype(np.float32)
        self.curve[int(np.argmax(self.curve))] = 1.0

    def take(self, first: int, end: int) -> np.ndarray:
        """Closure of frames [first, end)."""
        while self.next_t < end / self.fps:
            self.starts.append(int(self.next_t * self.fps))
            self.next_t += self.rng.uniform(*self.cfg.blink_interval)
        out = np.zeros(end - first, np.float32)
        for i in self.starts:
            a, b = max(i, first), min(i + len(self.curve), end)
            if a < b:
                out[a - first : b - first] = np.maximum(out[a - first : b - first], self.curve[a - i : b - i])
        return out


class HeadMotion:
    """Idle sway (a few slow incommensurate sines per axis, a function of absolute time) plus small nods that
    follow speech emphasis through a causal low-pass whose state carries over: streamed pieces join smoothly."""

    def __init__(self, fps: float, cfg: MotionConfig, rng: np.random.Generator):
        self.fps, self.cfg = fps, cfg
        self.freqs = rng.uniform(0.08, 0.45, (4, 3))
        self.phases = rng.uniform(0, 2 * np.pi, (4, 3))
        self.n = 0
        self.ref = 0.0  # loudness reference: the highest 95th percentile seen so far
        self.state = np.zeros(2)  # the two cascaded one-pole filters of the nod

    def take(self, envelope: np.ndarray) -> np.ndarray:
        """(len(envelope), 4) head controls for the next frames."""
        cfg, m = self.cfg, len(envelope)
        t = (self.n + np.arange(m)) / self.fps
        self.n += m
        out = np.zeros((m, 4), np.float32)
        amps = (cfg.idle_roll, cfg.idle_shift, cfg.idle_shift * 0.6, 0.004)
        weights = np.array([0.6, 0.3, 0.1])
        for axis, amp in enumerate(amps):
            waves = np.sin(2 * np.pi * self.freqs[axis, :, None] * t + self.phases[axis, :, None])
            out[:, axis] = amp * (weights[:, None] * waves).sum(0)
        if m:
            self.ref = max(self.ref, float(np.percentile(envelope, 95)))
        nod = self._lowpass(np.clip(envelope / (self.ref + 1e-6), 0, 1.5))
        out[:, 2] += cfg.nod * (nod - 0.4)  # about centred: speech averages ~0.4 of the reference
        out[:, 3] += 0.3 * cfg.nod * nod
        return out

    def _lowpass(self, x: np.ndarray) -> np.ndarray:
        """Two cascaded one-pole filters (time constant 90 ms each): smooth, causal, no overshoot."""
        alpha = 1 - np.exp(-1 / (0.09 * self.fps))
        out = np.empty(len(x), np.float32)
        s0, s1 = self.state
        for i, v in enumerate(x):
            s0 += alpha * (v - s0)
            s1 += alpha * (s0 - s1)
            out[i] = s1
        self.state = np.array([s0, s1])
        return out


class ControlStream:
    """The face plan made piece by piece, as speech arrives (streaming), with continuity across the joins.

    `extend` takes the per-frame loudness of the new frames and their phonemes (absolute times) and returns the
    controls of those frames; frames already returned never change. The mouth is recomputed over the whole
    history, so coarticulation crosses the joins; blinks come from a schedule drawn ahead; head motion is a
    function of absolute time plus a causal nod filter. Fed a whole utterance at once it is the whole plan.
    """

    def __init__(self, fps: float, cfg: MotionConfig, rest: float = 0.0):
        self.fps, self.cfg, self.rest = fps, cfg, rest
        self.envelope = np.zeros(0, np.float32)
        self.segments: list[Segment] | None = []  # None once a piece came without timings
        self._blinks = BlinkSchedule(fps, cfg, np.random.default_rng([cfg.seed, 1]))
        self._head = HeadMotion(fps, cfg, np.random.default_rng([cfg.seed, 2]))

    def __len__(self) -> int:
        return len(self.envelope)

    def extend(self, envelope: np.ndarray, segments: Sequence[Segment] | None) -> Controls:
        first = len(self.envelope)
        self.envelope = np.concatenate([self.envelope, np.asarray(envelope, np.float32)])
        n = len(self.envelope)
        self.segments = None if segments is None or self.segments is None else [*self.segments, *segments]
        if self.segments:
            jaw, wide, tongue = mouth_from_phonemes(self.segments, n, self.fps, self.cfg, self.rest, first)
        else:
            jaw, wide, tongue = (t[first:] for t in mouth_from_energy(self.envelope, self.fps, self.cfg, self.rest))
        return Controls(jaw, wide, self._blinks.take(first, n), self._head.take(self.envelope[first:]), tongue)


def build_controls(
    n_frames: int,
    fps: float,
    envelope: np.ndarray,
    segments: Sequence[Segment] | None,
    cfg: MotionConfig,
    rest: float = 0.0,
) -> Controls:
    """All tracks for one utterance. `envelope` is the per-frame RMS of the audio."""
    return ControlStream(fps, cfg, rest).extend(np.asarray(envelope, np.float32)[:n_frames], segments)
