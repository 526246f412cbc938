"""Per-frame sampling maps for a prepared portrait: head motion, jaw/lips, eyelids; and the drawn mouth interior.

Every map is built in output space (for each output pixel: where to sample the portrait), so the opened
mouth and the closed lids land exactly where we then paint, and no frame depends on the previous one.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.avatar.controls import TONGUE_TOUCH, Pose
from models.avatar.geometry import OPEN_PER_JAW, EyeGeometry, MouthGeometry, Portrait
from models.avatar.mouth import NONE, MouthPaint, paint_mouth, smoothstep

__all__ = ["MapBuilder", "MouthPaint", "Pose", "mouth_fields", "paint_mouth", "tip_forward"]

# Lip shapes beyond opening (fractions at full strength): rounding (o/u/w) brings the corners in and pushes the
# lips forward, fuller; spreading (i/e) pulls the corners out and thins them; a press (m/b/p) thins them more.
ROUND_NARROW, SPREAD_WIDEN, PRESS_WIDEN = 0.3, 0.16, 0.05
ROUND_FULL, SPREAD_THIN, PRESS_THIN = 0.22, 0.12, 0.35
UPPER_SHARE = 0.28  # of a closed mouth's opening taken by the upper lip (the jaw takes the rest)
JAW_TEETH = 0.8  # the lower teeth drop this much of the lower lip's drop (the lip also curls down on its own)
UPPER_EDGE = 0.07  # the drawn upper teeth's biting edge below the cut at mid-mouth, half mouth widths
TONGUE_RISE = 0.35  # of the jaw's drop: how far the tongue's back shows above the lower teeth
TIP_HALF_WIDTH = 0.3  # of the tongue tip seen between the teeth, in half mouth widths
TIP_OVER = 0.03  # how far the tip reaches over the upper teeth's edge (behind them, hidden; for th, in front)
TIP_UNDER = 0.09  # how far a th tip lies over the lower teeth (in front of them), half mouth widths
SEAM = 3.0  # px: the dark crease drawn where a photo's parted lips are brought together (hides the fold)


def mouth_fields(g: MouthGeometry, u: np.ndarray, v: np.ndarray, pose: Pose) -> tuple[np.ndarray, ...]:
    """Sideways and vertical shifts, then the interior's edge distances, at mouth-frame points (u, v), all in px.

    The lips part along `g.cut`: on a closed-mouth photo the lower lip and jaw take 72% of the opening, the upper
    lip 28%; on a photo that shows teeth its upper teeth stay with the skull and all below them drops with the jaw
    (closing, each lip covers the teeth on its side). Drawn teeth are fixed to the skull (upper) or to the jaw
    (lower): they use u, which does not round or spread with the lips.
    """
    w = g.half_width
    jaw, press = max(pose.jaw, 0.0), max(-pose.jaw, 0.0)
    rnd, spr = max(-pose.wide, 0.0), max(pose.wide, 0.0)
    at_u = _Lips(g, u)
    bump = np.exp(-((u / (1.8 * w)) ** 2 + ((v - at_u.line) / (1.2 * w)) ** 2))
    us = u * (1 + (ROUND_NARROW * rnd - SPREAD_WIDEN * spr - PRESS_WIDEN * press) * bump)
    lips = _Lips(g, us)
    opening = not g.shows_teeth or jaw >= g.rest_open
    dv = v - (lips.cut if opening else lips.line)  # closing, each lip goes halfway: none stretches
    delta, up_share, jaw_drop = _opening(g, us, lips, jaw, pose.wide)
    up, lo = delta * up_share, delta * (1 - up_share)
    chin = np.exp(-np.square(np.square(us / (1.5 * w)))) * jaw_drop
    d_lo = lo + (chin - lo) * smoothstep(dv / (0.6 * g.chin_depth))
    d_lo *= 1 - smoothstep((dv - g.chin_depth) / (0.8 * g.chin_depth))
    d_up = up * (1 - smoothstep(-dv / g.upper_height))
    shift = np.where(
        dv >= 0,
        np.where(d_lo > 0, np.minimum(dv, d_lo), d_lo),
        np.where(d_up > 0, -np.minimum(-dv, d_up), -d_up),
    )
    shift = shift + _fullness(g, us, lips, v - shift, ROUND_FULL * rnd - SPREAD_THIN * spr - PRESS_THIN * press)
    pos = np.maximum(delta, 0) if opening else _seam(g, lips, jaw)
    top, bottom = dv + up_share * pos, (1 - up_share) * pos - dv
    teeth = _teeth_and_tongue(g, u, v, at_u, max(jaw_drop, 0.0), opening, pose.tongue)
    f32 = np.float32
    return ((us - u).astype(f32), shift.astype(f32), np.minimum(top, bottom).astype(f32), top, bottom, us / w, *teeth)


class _Lips:
    """The photo's inner lip edges at some u (each curve looked up once per frame) and what follows from them."""

    def __init__(self, g: MouthGeometry, u: np.ndarray):
        self.upper, self.lower = g.inner_upper(u), g.inner_lower(u)
        self.gap = np.maximum(self.lower - self.upper, 0)
        self.line = (self.upper + self.lower) * 0.5
        self.cut = self.upper + g.split_at * (self.lower - self.upper)


def _opening(g: MouthGeometry, us: np.ndarray, lips: _Lips, jaw: float, wide: float):
    """Lip gap along the mouth (px; negative: a photo's parted lips closing), the upper lip's share of it, and how
    far the jaw (chin, lower teeth) drops, px."""
    w = g.half_width
    if not g.shows_teeth:  # a rounded mouth opens rounder (an O), a spread one flatter
        power = 0.5 - 0.22 * max(-wide, 0.0) + 0.15 * max(wide, 0.0)
        delta = jaw * OPEN_PER_JAW * w * np.clip(1 - (us / w) ** 2, 0, 1) ** power
        return delta, UPPER_SHARE, jaw * OPEN_PER_JAW * w * (1 - UPPER_SHARE)
    rest, scale = lips.gap, jaw / g.rest_open - 1
    centre = scale * float(g.rest_gap(np.zeros(1, np.float32))[0])
    if scale >= 0:  # the upper teeth stay with the skull, all below them drops with the jaw
        return scale * rest, 0.0, centre
    delta = scale * rest - 1.5 * np.clip(rest / 3, 0, 1)  # no sliver of teeth left
    return delta, 0.5, 0.5 * centre


def _seam(g: MouthGeometry, lips: _Lips, jaw: float) -> np.ndarray:
    """Height of the dark crease drawn where a photo's parted lips come together (it hides the fold of the warp,
    and reads as the line where the lips or the teeth meet); it grows from nothing and stays inside the mouth."""
    closing = np.clip(3 * (1 - jaw / g.rest_open), 0, 1)
    return SEAM * closing * np.clip(lips.gap / 2, 0, 1)


def _fullness(g: MouthGeometry, us: np.ndarray, lips: _Lips, v_src: np.ndarray, k: float) -> np.ndarray | float:
    """Extra shift that makes the lips look fuller (k > 0: sampled nearer the lip line) or thinner (k < 0)."""
    if k == 0:
        return 0.0
    d = v_src - lips.line
    reach = 1.6 * g.lip_height + 0.5 * lips.gap
    return k * d * np.exp(-np.square(d / reach) - np.square(np.square(us / (1.1 * g.half_width))))


def _teeth_and_tongue(
    g: MouthGeometry, u: np.ndarray, v: np.ndarray, lips: _Lips, drop: float, opening: bool, tip: float
):
    """Edge distances (px, positive inside) of the upper teeth (skull), lower teeth, tongue body and tongue tip
    (jaw)."""
    w, uu = g.half_width, u / g.half_width
    cut = lips.cut
    f32 = np.float32
    none = np.full(u.shape, NONE, f32)
    if not opening:
        return none, none, none, none, uu.astype(f32)
    upper = none if g.shows_teeth else (cut + w * (UPPER_EDGE - 0.12 * uu**2) - v).astype(f32)  # the arch curves up
    lower_top = cut - w * 0.1 * uu**2 + JAW_TEETH * drop
    lower = none if g.lower_teeth_shown else (v - lower_top).astype(f32)
    dome = np.clip(1 - (uu / 0.75) ** 2, 0, 1)
    tongue = (v - (lower_top - TONGUE_RISE * drop * dome)).astype(f32)
    return upper, lower, tongue, _tongue_tip(g, u, v, drop, tip), uu.astype(f32)


def tip_forward(tongue: float) -> float:
    """0..1: how far the tongue tip has come forward between the teeth (th) rather than behind the upper ones."""
    return float(smoothstep(np.float32((tongue - TONGUE_TOUCH) / (1 - TONGUE_TOUCH))))


def _tongue_tip(g: MouthGeometry, u: np.ndarray, v: np.ndarray, drop: float, tongue: float) -> np.ndarray:
    """Edge distance (px) of the tongue tip seen from the front: a rounded arch rising from mid-mouth at the
    lower teeth to the back of the upper teeth (l, t, d, n); coming forward (th) it flattens into a band between
    the teeth, a little over the edges of both rows."""
    if tongue <= 0:
        return np.full(u.shape, NONE, np.float32)
    w, mid, forward = g.half_width, float(g.cut(np.zeros(1, np.float32))[0]), tip_forward(tongue)
    widest = mid + JAW_TEETH * drop  # the lower teeth's top edge at mid-mouth
    edge = 0.0 if g.shows_teeth else UPPER_EDGE  # the photo's own upper teeth end at the cut
    up = max(min(tongue / TONGUE_TOUCH, 1.0) * (widest - mid - w * (edge - TIP_OVER)), 0.5)
    down = max(TIP_UNDER * w * forward, 0.5)  # behind the lower teeth it is hidden anyway
    a, dv = TIP_HALF_WIDTH * w, v - widest
    r = np.sqrt(np.abs(u / a) ** (2 + 2 * forward) + (dv / np.where(dv < 0, up, down)) ** 2)
    return ((1 - r) * np.where(dv < 0, min(a, up), min(a, down))).astype(np.float32)  # ~px from the outline


def _shown(cover: np.ndarray, full: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The full-resolution box (x0, y0, x1, y1 within the mouth region) where the half-resolution interior
    coverage is positive, one half-resolution pixel wider on each side (upsampling spreads it); None: nowhere."""
    rows, cols = np.flatnonzero((cover > 0).any(1)), np.flatnonzero((cover > 0).any(0))
    if not len(rows):
        return None
    w, h = full
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return max(2 * c0 - 2, 0), max(2 * r0 - 2, 0), min(2 * c1 + 4, w), min(2 * r1 + 4, h)


def _upsampler(half_box, origin, size, full):
    """Upsampling of a box of half-resolution fields to full resolution, as cv2.resize of the whole field would
    give it (pixel centres aligned: full-resolution x maps to half-resolution (x + 0.5) / 2 - 0.5); the maps are
    built once for all the fields of a frame."""
    (x0, y0), (bw, bh), (w, h) = origin, size, full
    sy, sx = half_box
    xs = (np.arange(x0, x0 + bw, dtype=np.float32) + 0.5) * ((w // 2) / w) - 0.5 - sx.start
    ys = (np.arange(y0, y0 + bh, dtype=np.float32) + 0.5) * ((h // 2) / h) - 0.5 - sy.start
    mapx = np.ascontiguousarray(np.broadcast_to(xs, (bh, bw)))
    mapy = np.ascontiguousarray(np.broadcast_to(ys[:, None], (bh, bw)))

    def up(field: np.ndarray) -> np.ndarray:
        return cv2.remap(field[sy, sx], mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return up


class MapBuilder:
    """Builds the sampling maps of one portrait; grids are allocated once and reused."""

    def __init__(self, portrait: Portrait):
        self.p = portrait
        x0, y0, x1, y1 = portrait.head_box
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.xs, self.ys = xs, ys
        w = portrait.head_weight.astype(np.float32)
        self.w, self.wx, self.wy = w, w * (xs - portrait.pivot[0]), w * (ys - portrait.pivot[1])

    def build(self, pose: Pose) -> tuple[np.ndarray, np.ndarray, MouthPaint | None]:
        """Maps (map_x, map_y) over the head box, and the mouth-interior paint for this pose (None: nothing to
        paint)."""
        mx, my = self._head(pose)
        paint = self._mouth(mx, my, self.p.mouth, pose)
        if pose.blink > 0.01:
            for eye in self.p.eyes:
                self._eye(mx, my, eye, pose.blink)
        return mx, my, paint

    def _head(self, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        # inverse similarity about the pivot, blended by the head mask w so shoulders stay still:
        # x + w * ((c - 1) * rx - si * ry + kx), each sum one OpenCV pass over w * rx, w * ry and w (made once)
        th = np.deg2rad(pose.roll)
        s = 1.0 + pose.scale
        c, si = float(np.cos(-th) / s), float(np.sin(-th) / s)
        tx, ty = pose.dx * self.p.face_size, pose.dy * self.p.face_size
        kx, ky = -(c * tx - si * ty), -(si * tx + c * ty)
        mx = cv2.add(cv2.scaleAdd(self.wx, c - 1, self.xs), cv2.addWeighted(self.wy, -si, self.w, kx, 0))
        my = cv2.add(cv2.scaleAdd(self.wy, c - 1, self.ys), cv2.addWeighted(self.wx, si, self.w, ky, 0))
        return mx, my

    def _region(self, mx, my, roi):
        hx0, hy0 = self.p.head_box[:2]
        x0, y0, x1, y1 = roi
        sl = (slice(y0 - hy0, y1 - hy0), slice(x0 - hx0, x1 - hx0))
        return sl, mx[sl], my[sl]

    def _mouth(self, mx, my, g: MouthGeometry, pose: Pose) -> MouthPaint | None:
        # the fields are smooth: evaluate them at half resolution (pixel-centre aligned) and upsample, each channel
        # apart (OpenCV is much slower on many-channel images), the interior's only over the box where it shows
        if pose.jaw == 0 and pose.wide == 0 and not g.shows_teeth:
            return None  # a closed mouth at rest is the photo's (silence: many frames)
        sl, qx, qy = self._region(mx, my, g.roi)
        h, w = qx.shape
        half = (w // 2, h // 2)
        cx = cv2.resize(qx, half, interpolation=cv2.INTER_AREA)
        cy = cv2.resize(qy, half, interpolation=cv2.INTER_AREA)
        u, v = g.frame.to_local(cx, cy)
        du, shift, cover, *rest = mouth_fields(g, u, v, pose)
        du, shift = cv2.resize(du, (w, h)), cv2.resize(shift, (w, h))
        mx[sl] = qx + g.frame.ex[0] * du - g.frame.ey[0] * shift
        my[sl] = qy + g.frame.ex[1] * du - g.frame.ey[1] * shift
        box = _shown(cover, (w, h))
        if box is None:
            return None
        x0, y0, x1, y1 = box
        half_box = (slice(y0 // 2, (y1 + 1) // 2 + 1), slice(x0 // 2, (x1 + 1) // 2 + 1))
        up = list(map(_upsampler(half_box, (x0, y0), (x1 - x0, y1 - y0), (w, h)), (cover, *rest)))
        roi = (g.roi[0] + x0, g.roi[1] + y0, g.roi[0] + x1, g.roi[1] + y1)
        return MouthPaint(roi, np.clip(up[0], 0, 1), *up[1:], half_width=g.half_width,
                          tip_forward=tip_forward(pose.tongue))  # fmt: skip

    def _eye(self, mx, my, g: EyeGeometry, blink: float) -> None:
        sl, qx, qy = self._region(mx, my, g.roi)
        u, v = g.frame.to_local(qx, qy)
        top, bottom = g.upper(u), g.lower(u)
        edge = top + blink * 0.9 * np.maximum(bottom - top, 0)  # where the lid edge now lies
        brow = top - 1.4 * g.opening
        inside = (v >= brow) & (v < edge)
        src = brow + (v - brow) * (top - brow) / np.maximum(edge - brow, 1e-3)
        shift = np.where(inside, v - src, 0.0)
        mx[sl] = qx - g.frame.ey[0] * shift
        my[sl] = qy - g.frame.ey[1] * shift
