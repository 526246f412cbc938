"""Timed mouth shapes from the audio alone, with no model and no text: the estimate for a language without a
recogniser. Better than loudness on each count the face shows:

- openness from the first formant (an open vowel has a high F1), scaled by the vowel band's energy;
- rounding and spreading from the second formant (rounded vowels have a low F2, spread ones a high F2);
- closures from the short silences of stops, and the lips from their bursts: a bilabial's release has a falling
  spectrum (its energy low), an alveolar's or velar's a rising or compact one (Stevens and Blumstein);
- hiss (s, f, sh) from energy above 3.5 kHz with little below 1 kHz.

Each 10 ms frame gets the vowel of the viseme table nearest its (openness, width), or a consonant class; runs of
one label become the phonemes the renderer takes.
"""

from __future__ import annotations

import numpy as np

from models.align.features import HOP_S, RATE, formants, frames, power_spectrum
from models.align.phones import SILENT, merge_silence
from models.tts.base import Phoneme

SILENCE_DB = -35.0  # below the speech level (95th percentile): no speech
CLOSURE_S = (0.03, 0.16)  # a silence this long between two sounds is a stop's closure
MIN_RUN_S = 0.03  # shorter runs of one label join their neighbours
# Vowels the estimate picks from: (symbol, F1-based openness 0..1, F2-based width -1..1)
_VOWELS = [("a", 0.95, 0.2), ("æ", 0.8, 0.5), ("ɛ", 0.6, 0.55), ("e", 0.45, 0.7), ("i", 0.2, 0.9),
           ("ɪ", 0.3, 0.6), ("ə", 0.45, 0.0), ("ʌ", 0.7, 0.05), ("ɔ", 0.7, -0.7), ("o", 0.5, -0.85),
           ("ʊ", 0.3, -0.8), ("u", 0.2, -1.0)]  # fmt: skip
_SHAPES = [*_VOWELS, ("n", 0.2, 0.1)]
FALLING = 3.0  # a bilabial burst's low-band energy over its high-band energy, at least


def estimate(audio: np.ndarray, sample_rate: int) -> list[Phoneme]:
    """Phonemes (IPA symbols of the viseme table) estimated from the sound alone."""
    if not len(audio):
        return []
    labels = frame_labels(audio, sample_rate)
    return _runs(labels)


def frame_labels(audio: np.ndarray, sample_rate: int) -> list[str]:
    fr16 = frames(audio, sample_rate)
    spec = power_spectrum(fr16)
    freqs = np.fft.rfftfreq(512, 1 / RATE)
    band = lambda lo, hi: spec[:, (freqs >= lo) & (freqs < hi)].sum(1) + 1e-10  # noqa: E731
    level = 10 * np.log10(spec.sum(1) + 1e-10)
    level -= np.percentile(level, 95)
    low, high = band(80, 1000), band(3500, 7900)
    vowel_db = 10 * np.log10(band(300, 1000))
    vowel_db -= np.percentile(vowel_db, 95)
    f = formants(frames(audio, sample_rate, 10000), 10000)
    labels = []
    for i in range(len(level)):
        if level[i] < SILENCE_DB:
            labels.append(SILENT)
        elif high[i] > 2 * low[i]:
            labels.append("s" if level[i] > -25 else "f")
        else:
            labels.append(_shape(f[i], vowel_db[i]))
    return _closures(labels, spec, freqs)


def _shape(f12: np.ndarray, vowel_db: float) -> str:
    """The vowel (or a nearly closed murmur, "n") nearest the frame's openness and width: openness from F1,
    scaled by the vowel band's energy (a weak or nasal sound opens less), width from F2."""
    f1, f2 = (float(x) for x in f12)
    if not np.isfinite(f2) or (np.isfinite(f1) and f2 < f1 * 1.2):
        f2 = 1300.0
    by_f1 = np.interp(f1, [280, 850], [0.15, 1.0]) if np.isfinite(f1) else 0.45
    openness = by_f1 * np.interp(vowel_db, [-30, -5], [0.2, 1.0])
    width = np.interp(f2, [750, 1300, 2300], [-1.0, 0.0, 0.9])
    return min(_SHAPES, key=lambda v: (v[1] - openness) ** 2 + 0.5 * (v[2] - width) ** 2)[0]


def _closures(labels: list[str], spec: np.ndarray, freqs: np.ndarray) -> list[str]:
    """Short silences between sounds become stop closures: "p" when the burst after it clearly falls
    (bilabial: its energy below 1.5 kHz over three times that above 3 kHz), "t" otherwise."""
    out = list(labels)
    lo, hi = (freqs >= 300) & (freqs < 1500), (freqs >= 3000) & (freqs < 7000)
    i = 0
    while i < len(out):
        if out[i] != SILENT:
            i += 1
            continue
        j = i
        while j < len(out) and out[j] == SILENT:
            j += 1
        if i > 0 and j < len(out) and CLOSURE_S[0] <= (j - i) * HOP_S <= CLOSURE_S[1]:
            burst = spec[j : j + 2].sum(0)
            falling = burst[lo].mean() > FALLING * burst[hi].mean()
            out[i:j] = ["p" if falling else "t"] * (j - i)
        i = j
    return out


def _runs(labels: list[str]) -> list[Phoneme]:
    """Runs of equal labels as phonemes; runs under MIN_RUN_S (one frame of a misread vowel) take the label
    before them, except closures, which are kept however short."""
    min_frames = int(round(MIN_RUN_S / HOP_S))
    runs: list[list] = []
    for lab in labels:
        if runs and runs[-1][0] == lab:
            runs[-1][1] += 1
        else:
            runs.append([lab, 1])
    merged: list[list] = []
    for lab, n in runs:
        if merged and (n < min_frames and lab not in ("p", "t", SILENT) or merged[-1][0] == lab):
            merged[-1][1] += n
        else:
            merged.append([lab, n])
    out, at = [], 0
    for lab, n in merged:
        out.append(Phoneme(lab, at * HOP_S, n * HOP_S))
        at += n
    return merge_silence(out)
