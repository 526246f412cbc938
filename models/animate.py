"""Audio in -> speech pieces with timed phonemes: the stage that takes the place of a TTS engine when the voice
comes from elsewhere (a recording, a hosted TTS, a voice agent). From its pieces on, everything is the text
path's: the face plan, the renderer, the MP4 writer and the stream.

The audio is cut at its pauses into pieces of at most MAX_PIECE_S (the first shorter, so a stream starts
sooner). With its text, the whole clip is aligned once and the phonemes are shared out among the pieces; without
it, each piece is recognised on its own, so the next one is heard while this one renders.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from models.align import AudioAligner
from models.align.long import MAX_PIECE_S, cut_points  # noqa: F401  (the services import them from here)
from models.tts.base import Phoneme, SpeechChunk

FIRST_PIECE_S = 3.0


def split_phonemes(phonemes: list[Phoneme], cuts_s: list[float], end_s: float) -> list[list[Phoneme]]:
    """Phonemes on one timeline -> one list per piece, times relative to the piece (a phoneme across a cut is
    shared between the two pieces)."""
    bounds = [0.0, *cuts_s, end_s]
    out: list[list[Phoneme]] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        piece = []
        for p in phonemes:
            s, e = max(p.start, a), min(p.start + p.duration, b)
            if e > s:
                piece.append(Phoneme(p.symbol, s - a, e - s))
        out.append(piece)
    return out


def speech_pieces(aligner: AudioAligner, audio: np.ndarray, sample_rate: int, text: str | None = None,
                  language: str = "en", first_s: float | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
    """The clip as speech pieces with timings (each one's `source` says how they were found)."""
    cuts = cut_points(audio, sample_rate, first_s=first_s)
    bounds = [0, *cuts, len(audio)]
    if text and text.strip():
        found = aligner.align(audio, sample_rate, text, language)
        shares = split_phonemes(found.phonemes, [c / sample_rate for c in cuts], len(audio) / sample_rate)
        for (a, b), phonemes in zip(zip(bounds[:-1], bounds[1:], strict=True), shares, strict=True):
            yield SpeechChunk(audio[a:b], sample_rate, text, phonemes, found.source)
        return
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        found = aligner.align(audio[a:b], sample_rate, None, language)
        yield SpeechChunk(audio[a:b], sample_rate, found.text or "", found.phonemes, found.source)
