"""Audio (+ text when known) -> timed phonemes: the one entry point, which picks the best method that can run.

| text  | language                  | method                                                      | source      |
|-------|---------------------------|-------------------------------------------------------------|-------------|
| known | en                        | PocketSphinx forced alignment (eSpeak DTW if it fails)      | aligned     |
| known | other eSpeak languages    | eSpeak rendering + DTW                                      | aligned     |
| none  | any, Whisper imported     | Whisper's transcript, then the aligner above                | transcribed |
| none  | en, no Whisper            | PocketSphinx words, then alignment                          | transcribed |
| none  | other; en live (a piece)  | PocketSphinx phone recognition (English phones)             | recognized  |
| none  | without PocketSphinx      | formants and bursts (models/align/spectral.py)              | spectral    |

The renderer takes the result as it takes a TTS engine's timings: a list of IPA `Phoneme`s. A clip longer than
30 s is aligned in pieces (models/align/long.py), so memory stays bounded whatever its length.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from dataclasses import dataclass, field

import numpy as np

import models.align.long as long
from models.align.dtw import VOICES, DtwAligner, pronounce, render, voice_for
from models.align.phones import arpabet_phonemes, closing, delay, quiet_edges, respell
from models.align.spectral import estimate as spectral_estimate
from models.errors import EngineUnavailable, InvalidInput, UnsupportedLanguage
from models.text import normalize_language
from models.tts.base import MOUTH_SOURCES, Phoneme

SOURCES = MOUTH_SOURCES
# PocketSphinx's boundaries sit this much earlier than Piper's marks, before a vowel and before a consonant
# (medians over 10 development sentences, none of them in the evaluation set: docs, Audio in)
SPHINX_DELAY_S = (0.023, 0.036)
_SCRIPTS = {
    "zh-cn": ("CJK",),
    "ja": ("CJK", "HIRAGANA", "KATAKANA"),
    "ko": ("HANGUL", "CJK"),
    "ru": ("CYRILLIC",),
    "ar": ("ARABIC",),
    "hi": ("DEVANAGARI",),
}  # fmt: skip  (the others are written in Latin letters)


@dataclass(frozen=True)
class Alignment:
    phonemes: list[Phoneme]
    source: str  # one of SOURCES
    method: str  # the aligner that made it (pocketsphinx, espeak-dtw, pocketsphinx-allphone, formants)
    text: str | None = None  # the text laid over the audio (given or transcribed)
    ms: float = 0.0

    def as_dict(self) -> dict:
        return {"source": self.source, "method": self.method, "align_ms": round(self.ms, 1)}


@dataclass
class AudioAligner:
    """Holds the loaded aligners (PocketSphinx decoders load in ~0.4 s, once). `transcriber`: Whisper, when
    imported (models/asr), for text-free audio in languages PocketSphinx does not know. Thread-safe."""

    transcriber: object | None = None
    dtw: DtwAligner = field(default_factory=DtwAligner)
    _sphinx: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, text: str | None, language: str) -> str:
        return checked_language(text, language)

    def align(self, audio: np.ndarray, sample_rate: int, text: str | None = None, language: str = "en",
              live: bool = False) -> Alignment:  # fmt: skip
        """`live`: a piece of a stream, where latency counts: English without text is recognised phone by phone
        (0.5x Piper's time) instead of word by word and then aligned (1.2x, a closer mouth)."""
        t0 = time.perf_counter()
        text = text.strip() if text and text.strip() else None
        lang = self.check(text, language)
        if len(audio) > long.LONG_S * sample_rate:
            found = self._in_pieces(audio, sample_rate, text, lang, live)
        elif text is not None:
            found = self._with_text(audio, sample_rate, text, lang)
        else:
            found = self._without_text(audio, sample_rate, lang, live)
        return Alignment(*found, ms=(time.perf_counter() - t0) * 1000)

    def _in_pieces(self, audio, sample_rate, text, lang, live) -> tuple:
        """A long clip: cut (at its pauses, or where its sentences end), each piece aligned alone, the phonemes
        put back on the clip's timeline. The source and method are the first piece's."""
        if text is None:
            cuts = long.cut_points(audio, sample_rate, max_s=long.PIECE_S)
            spans = [(a, b, None) for a, b in zip([0, *cuts], [*cuts, len(audio)], strict=True)]
        else:
            from models.text import split_sentences
            from models.tts.base import SynthesisOptions
            from models.tts.espeak import speak_sentence

            units = long.units(split_sentences(text) or [text])
            spoken = [speak_sentence(u, voice_for(lang), SynthesisOptions()) for u in units]
            ends = list(np.cumsum([c.duration for c in spoken]))[:-1]
            synth = np.concatenate([c.audio for c in spoken])
            cuts = long.sentence_cuts(audio, sample_rate, synth, spoken[0].sample_rate, ends)
            spans = long.pieces(cuts, units, len(audio), sample_rate)
        phonemes, first, heard = [], None, []
        for a, b, piece_text in spans:
            piece = audio[a:b]
            if piece_text is not None:
                found = self._with_text(piece, sample_rate, piece_text, lang)
            else:
                found = self._without_text(piece, sample_rate, lang, live)
            first = first or found
            heard += [found[3]] if found[3] else []
            phonemes += [Phoneme(p.symbol, p.start + a / sample_rate, p.duration) for p in found[0]]
        return phonemes, first[1], first[2], text if text is not None else (" ".join(heard) or None)

    def warm(self) -> None:
        """Load the English decoders now (a service does this at start, not on its first request)."""
        for kind in ("aligner", "recognizer", "transcriber"):
            self.sphinx(kind)

    def sphinx(self, kind: str):
        with self._lock:
            if kind not in self._sphinx:
                from models.align.sphinx import SphinxAligner, SphinxRecognizer, SphinxTranscriber

                make = {"aligner": lambda: SphinxAligner(pronounce), "recognizer": SphinxRecognizer,
                        "transcriber": SphinxTranscriber}  # fmt: skip
                self._sphinx[kind] = make[kind]()
            return self._sphinx[kind]

    def _with_text(self, audio, sample_rate, text, lang, source="aligned") -> tuple:
        if lang == "en":
            aligner = self.sphinx("aligner")
            if (phones := aligner.align(audio, sample_rate, text)) is not None:
                symbols = [p.symbol for p in render(text, VOICES[lang])[2]]
                found = closing(delay(respell(phones, symbols), *SPHINX_DELAY_S))
                return quiet_edges(found, audio, sample_rate), source, aligner.name, text
        if (found := self.dtw.align(audio, sample_rate, text, lang)) is not None:
            return found, source, self.dtw.name, text
        return self._without_text(audio, sample_rate, lang, live=True)

    def _without_text(self, audio, sample_rate, lang, live: bool) -> tuple:
        heard = None if live else self._transcribe(audio, sample_rate, lang)
        if heard:
            return self._with_text(audio, sample_rate, heard, lang, "transcribed")
        try:  # English phones: in other languages too, closer than formants alone (docs, Audio in)
            recognizer = self.sphinx("recognizer")
        except EngineUnavailable:
            return spectral_estimate(audio, sample_rate), "spectral", "formants", None
        phones = closing(delay(arpabet_phonemes(recognizer.recognize(audio, sample_rate)), *SPHINX_DELAY_S))
        return quiet_edges(phones, audio, sample_rate), "recognized", recognizer.name, None

    def _transcribe(self, audio, sample_rate, lang) -> str | None:
        """Words heard: Whisper's where it is imported and knows the language, else PocketSphinx's in English."""
        t = self.transcriber
        if t is not None and lang in getattr(t, "languages", ()):
            text = t.transcribe(audio, sample_rate, lang).text
        elif lang == "en":
            text = self.sphinx("transcriber").transcribe(audio, sample_rate)
        else:
            return None
        return text if any(c.isalnum() for c in text) else None


def checked_language(text: str | None, language: str) -> str:
    """The language's code, once it and the text are known to be usable (raises before any work is done)."""
    lang = normalize_language(language)
    if lang not in VOICES:
        raise UnsupportedLanguage(f"no aligner for language {language!r}", allowed=sorted(VOICES), field="language")
    if text:
        check_script(text, lang)
    return lang


def check_script(text: str, language: str) -> None:
    """A text in another writing system than the language's is refused: it cannot be what the audio says."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return
    scripts = _SCRIPTS.get(language, ("LATIN",))
    inside = sum(any(unicodedata.name(c, "").startswith(s) for s in scripts) for c in letters)
    if inside < 0.5 * len(letters):
        raise InvalidInput(
            f"the text is not written as {language!r} is: most of its letters are not {'/'.join(scripts).lower()}",
            allowed=f"a text in the language given ({language}), or another language",
            field="text",
        )
