"""Known text in any language eSpeak speaks -> timed phonemes, by dynamic time warping (as aeneas does).

eSpeak NG says the text (its phonemes and their durations come with it); the cepstra of that synthetic rendering
and of the real audio are matched frame by frame (DTW, cosine distance), and each synthetic phoneme boundary is
carried over to the real audio along the warping path.

The path's steps all come from the previous real frame (the real audio advances one frame, the synthetic one 0-3),
so each row is one vectorised numpy step: real speech may be up to 3x faster than eSpeak's, and any slower.
"""

from __future__ import annotations

import numpy as np

from models.align.features import HOP_S, mfcc
from models.errors import UnsupportedLanguage
from models.text import normalize_language, split_sentences
from models.tts.base import Phoneme, SynthesisOptions

# Our language codes -> eSpeak voices: every language XTTS-v2 speaks.
VOICES = {
    "en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt", "pl": "pl", "tr": "tr", "ru": "ru",
    "nl": "nl", "cs": "cs", "ar": "ar", "zh-cn": "cmn", "ja": "ja", "hu": "hu", "ko": "ko", "hi": "hi",
}  # fmt: skip
MAX_STEP = 3  # synthetic frames the path may advance per real frame


def voice_for(language: str) -> str:
    lang = normalize_language(language)
    if lang not in VOICES:
        raise UnsupportedLanguage(f"no aligner for language {language!r}", allowed=sorted(VOICES), field="language")
    return VOICES[lang]


def pronounce(word: str, language: str = "en") -> list[str]:
    """eSpeak's IPA phonemes of a word (for dictionaries that lack it)."""
    from models.tts.espeak import speak_sentence

    return [p.symbol for p in speak_sentence(word, voice_for(language), SynthesisOptions()).phonemes]


class DtwAligner:
    name = "espeak-dtw"

    def align(self, audio: np.ndarray, sample_rate: int, text: str, language: str) -> list[Phoneme] | None:
        """Phonemes of `text` laid over `audio` (None when eSpeak says nothing for the text)."""
        synth, rate, phonemes = render(text, voice_for(language))
        if not phonemes or not len(audio):
            return None
        real_f, synth_f = mfcc(audio, sample_rate), mfcc(synth, rate)
        path = warp(real_f, synth_f)
        return _carry(phonemes, path, len(audio) / sample_rate)


def render(text: str, voice: str) -> tuple[np.ndarray, int, list[Phoneme]]:
    """eSpeak's audio of the whole text, its sample rate and its phonemes on one timeline."""
    from models.tts.espeak import speak_sentence

    chunks = [speak_sentence(s, voice, SynthesisOptions()) for s in split_sentences(text) or [text]]
    phonemes, at = [], 0.0
    for chunk in chunks:
        phonemes += [Phoneme(p.symbol, p.start + at, p.duration) for p in chunk.phonemes]
        at += chunk.duration
    return np.concatenate([c.audio for c in chunks]), chunks[0].sample_rate, phonemes


def warp(real: np.ndarray, synth: np.ndarray) -> np.ndarray:
    """For each real frame, the synthetic frame it matches (non-decreasing, from the first to the last)."""
    a = real / (np.linalg.norm(real, axis=1, keepdims=True) + 1e-9)
    b = synth / (np.linalg.norm(synth, axis=1, keepdims=True) + 1e-9)
    cost = (1 - a @ b.T).astype(np.float32)
    n, m = cost.shape
    total = np.full(m, np.inf, np.float32)
    total[: MAX_STEP + 1] = cost[0, : MAX_STEP + 1]
    back = np.zeros((n, m), np.int8)
    padded = np.full(m + MAX_STEP, np.inf, np.float32)
    for i in range(1, n):
        padded[MAX_STEP:] = total
        options = np.stack([padded[MAX_STEP - s : MAX_STEP - s + m] for s in range(MAX_STEP + 1)])
        step = options.argmin(0)
        total = cost[i] + options[step, np.arange(m)]
        back[i] = step
    path = np.zeros(n, np.int64)
    j = m - 1 if np.isfinite(total[-1]) else int(np.argmin(total))
    for i in range(n - 1, -1, -1):
        path[i] = j
        j -= int(back[i, j])
    return path


def _carry(phonemes: list[Phoneme], path: np.ndarray, duration: float) -> list[Phoneme]:
    """Synthetic phoneme spans -> real ones: a boundary at synthetic frame j lands on the first real frame whose
    match reaches j."""
    starts = [min(np.searchsorted(path, int(round(p.start / HOP_S))) * HOP_S, duration) for p in phonemes]
    ends = [*starts[1:], duration]
    return [Phoneme(p.symbol, a, b - a) for p, a, b in zip(phonemes, starts, ends, strict=True) if b > a]
