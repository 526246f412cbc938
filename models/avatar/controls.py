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

from models.avatar.visemes import TONGUE_TOUCH, Segment, has_stress, targets


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


def _gaussian(x: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing with edge padding."""
    if sigma_samples < 0.5:
        return x
    r = int(3 * sigma_samples) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_samples) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def mouth_from_phonemes(
    segments: Sequence[Segment], n_frames: int, fps: float, cfg: MotionConfig, rest: float, first: int = 0,
    marked: bool | None = None,
):  # fmt: skip
    """Jaw, width and tongue tracks of frames [first, n_frames): piecewise targets at 200 Hz over the whole
    history, smoothed (coarticulation, also across the joins of streamed pieces), closures enforced. `marked`:
    whether the speech marks stress (None: whether these segments do)."""
    hz = 200.0
    n = int(np.ceil(n_frames / fps * hz)) + 1
    jaw, wide, rise, forward, closed = targets(list(segments), n, hz, rest, marked)
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

    `window_s` bounds the history kept (a live session runs for hours): the mouth is then recomputed over the
    last `window_s` only, which is the same wherever the smoothing (~0.1 s) cannot reach across the window.
    """

    def __init__(self, fps: float, cfg: MotionConfig, rest: float = 0.0, window_s: float | None = None):
        self.fps, self.cfg, self.rest = fps, cfg, rest
        self.window = None if window_s is None else max(int(window_s * fps), 1)
        self.envelope = np.zeros(0, np.float32)  # of the frames from `origin` on
        self.origin = 0  # the first frame still kept
        self.n = 0
        self.segments: list[Segment] | None = []  # None once a piece came without timings
        self.marked = False  # the speech marks stress (visemes.has_stress), once any piece did
        self._blinks = BlinkSchedule(fps, cfg, np.random.default_rng([cfg.seed, 1]))
        self._head = HeadMotion(fps, cfg, np.random.default_rng([cfg.seed, 2]))

    def __len__(self) -> int:
        return self.n

    def extend(self, envelope: np.ndarray, segments: Sequence[Segment] | None) -> Controls:
        first, o = self.n, self.origin
        self.envelope = np.concatenate([self.envelope, np.asarray(envelope, np.float32)])
        self.n = n = o + len(self.envelope)
        self.segments = None if segments is None or self.segments is None else [*self.segments, *segments]
        self.marked = self.marked or (segments is not None and has_stress(list(segments)))
        if self.segments:
            shifted = _since(self.segments, o / self.fps)
            jaw, wide, tongue = mouth_from_phonemes(shifted, n - o, self.fps, self.cfg, self.rest, first - o,
                                                    self.marked)  # fmt: skip
        else:
            energy = mouth_from_energy(self.envelope, self.fps, self.cfg, self.rest)
            jaw, wide, tongue = (t[first - o :] for t in energy)
        out = Controls(jaw, wide, self._blinks.take(first, n), self._head.take(self.envelope[first - o :]), tongue)
        self._trim()
        return out

    def _trim(self) -> None:
        """Forget what lies more than a window behind the last frame (in steps of a window, so rarely)."""
        if self.window is None or self.n - self.origin < 2 * self.window:
            return
        keep = self.n - self.window
        self.envelope = self.envelope[keep - self.origin :]
        self.origin = keep
        if self.segments:
            t = keep / self.fps
            self.segments = [s for s in self.segments if s.start + s.duration > t]


def _since(segments: list[Segment], t0: float) -> list[Segment]:
    """Segments on a timeline that starts at `t0` (a segment across it is cut there)."""
    if t0 <= 0:
        return segments
    out = []
    for s in segments:
        start = max(s.start, t0)
        out.append(Segment(s.symbol, start - t0, s.duration - (start - s.start)))
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
    return ControlStream(fps, cfg, rest).extend(np.asarray(envelope, np.float32)[:n_frames], segments)
