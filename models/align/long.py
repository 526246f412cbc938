"""Long clips, aligned in pieces so that memory and time grow with the clip's length, not with its square.

Aligning five minutes at once took the speech worker to 3.7 GB (PocketSphinx's search over the whole clip), and the
DTW of a whole clip is quadratic (its cost matrix alone: 7 GB for five minutes). So a clip longer than LONG_S is
cut first:
- without text, at its pauses, into pieces of at most PIECE_S, each recognised on its own (as the stream does);
- with text, where its sentences are: eSpeak renders each sentence, a coarse DTW (100 ms frames: 3000 x 3000 cells
  for five minutes, ~50 MB) finds where each sentence's end lands in the audio, each cut moves to the quietest
  10 ms within COARSE_S of it, and each piece is aligned with its own sentences by the usual aligner.
"""

from __future__ import annotations

import numpy as np

from models.align.dtw import warp
from models.align.features import HOP_S, mfcc

LONG_S = 30.0  # clips longer than this are aligned in pieces
PIECE_S = 8.0  # without text: the longest piece (what the stream recognises at a time)
COARSE = 10  # 10 ms frames pooled into 100 ms ones for the coarse alignment
COARSE_S = COARSE * HOP_S
MAX_WORDS = 40  # a sentence longer than this is split into runs of words (a text without punctuation)
PIECE_UNITS_S = 20.0  # sentences are grouped into pieces of about this length
MAX_PIECE_S = 8.0
PAUSE_DB = -30.0  # a 10 ms frame this far under the speech level is part of a pause


def cut_points(
    audio: np.ndarray, sample_rate: int, max_s: float = MAX_PIECE_S, first_s: float | None = None
) -> list[int]:
    """Sample indices where to cut: each piece at most `max_s` long (the first `first_s`), cut at the quietest
    10 ms of the last part of its window (inside a pause where there is one)."""
    hop = max(sample_rate // 100, 1)
    n = len(audio) // hop
    if n == 0:
        return []
    db = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    cuts, at = [], 0
    while True:
        limit = int((first_s if not cuts and first_s else max_s) * 100)
        if n - at <= limit:
            return cuts
        lo = at + limit // 2
        quiet = lo + int(np.argmin(db[lo : at + limit]))
        cuts.append(quiet * hop)
        at = quiet


def units(sentences: list[str]) -> list[str]:
    """Sentences, the very long ones split into runs of MAX_WORDS words."""
    out = []
    for sentence in sentences:
        words = sentence.split()
        out += [" ".join(words[i : i + MAX_WORDS]) for i in range(0, len(words), MAX_WORDS)] or [sentence]
    return out


def _pooled(features: np.ndarray) -> np.ndarray:
    n = len(features) // COARSE
    if n == 0:
        return features.mean(0, keepdims=True)
    return features[: n * COARSE].reshape(n, COARSE, -1).mean(1)


def _quietest(audio: np.ndarray, sample_rate: int, at: int, radius: int) -> int:
    """The start of the quietest 10 ms within `radius` samples of `at`."""
    hop = max(sample_rate // 100, 1)
    lo, hi = max(at - radius, 0), min(at + radius, len(audio))
    n = (hi - lo) // hop
    if n < 2:
        return at
    energy = (audio[lo : lo + n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1)
    return lo + int(np.argmin(energy)) * hop


def sentence_cuts(audio: np.ndarray, sample_rate: int, synth: np.ndarray, synth_rate: int,
                  ends_s: list[float]) -> list[int]:  # fmt: skip
    """Sample indices in `audio` where the synthetic rendering's units end (`ends_s`, on its timeline: every unit's
    but the last), non-decreasing: a coarse DTW, then each cut moved into the nearest pause."""
    path = warp(_pooled(mfcc(audio, sample_rate)), _pooled(mfcc(synth, synth_rate)))
    radius = int(COARSE_S * 5 * sample_rate)
    cuts, last = [], 0
    for end in ends_s:
        frame = int(np.searchsorted(path, int(round(end / COARSE_S))))
        at = _quietest(audio, sample_rate, min(int(frame * COARSE_S * sample_rate), len(audio)), radius)
        last = max(at, last)
        cuts.append(last)
    return cuts


def pieces(cuts: list[int], texts: list[str], length: int, sample_rate: int) -> list[tuple[int, int, str]]:
    """(start, end, text) of each piece: the units between consecutive cuts, merged into pieces of about
    PIECE_UNITS_S (a unit whose span came out empty joins the next)."""
    out: list[tuple[int, int, str]] = []
    carried = ""
    for a, b, text in zip([0, *cuts], [*cuts, length], texts, strict=True):
        text = f"{carried} {text}".strip()
        if b <= a:
            carried = text
            continue
        carried = ""
        if out and (b - out[-1][0]) / sample_rate <= PIECE_UNITS_S:
            out[-1] = (out[-1][0], b, f"{out[-1][2]} {text}")
        else:
            out.append((a, b, text))
    if carried and out:
        out[-1] = (out[-1][0], out[-1][1], f"{out[-1][2]} {carried}")
    return out
