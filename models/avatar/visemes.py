"""What each phoneme does to the mouth: viseme targets (jaw opening, lip width), the tongue tip, stress, and the
piecewise targets of a timed phoneme sequence, which models/avatar/controls.py smooths into per-frame tracks."""

from __future__ import annotations

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
    "m": (0.0, 0.0), "b": (0.0, 0.0), "p": (0.0, 0.0),  # bilabials: lips closed (enforced in controls.py)
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
class Segment:
    symbol: str
    start: float
    duration: float


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


def tongue_tip(symbol: str) -> tuple[float, float]:
    """(rise, forward) of the tongue tip for one phoneme: 0..1 each."""
    found = _TONGUE_TIP.get(symbol)
    if found is None and len(symbol) > 1:  # stressed or multi-letter symbols: their first sound
        found = _TONGUE_TIP.get(symbol.strip("ˈˌːˑ")[:1])
    return found or (0.0, 0.0)


def targets(segments: list[Segment], n: int, hz: float, rest: float, marked: bool | None = None) -> np.ndarray:
    """(5, n) piecewise targets at `hz`: jaw, width, tongue rise, tongue forward and lip closure (1 on m/b/p).
    `marked`: whether the speech marks stress at all (None: whether these segments do)."""
    out = np.zeros((5, n), np.float32)
    out[0] = rest
    last = (rest, 0.0, 0.0, 0.0)
    marked = has_stress(segments) if marked is None else marked
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


def has_stress(segments: list[Segment]) -> bool:
    return any(c in STRESS for seg in segments for c in seg.symbol)


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
