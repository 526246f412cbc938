"""English phones from audio with PocketSphinx 5 (its wheel ships the US-English acoustic model, the CMU
dictionary and a phone language model: nothing is downloaded).

- `SphinxAligner`: forced alignment of a known text, in two passes (words, then the phones inside them).
  Words the dictionary lacks (names, numbers, foreign words) get a pronunciation from eSpeak.
- `SphinxRecognizer`: phone recognition without text (allphone search with the phone language model).

A decoder is not thread-safe and takes ~0.4 s to load, so each kind keeps a small pool, grown on demand.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from models.align.phones import ipa_to_arpabet
from models.errors import EngineUnavailable
from models.media.audio import resample

RATE = 16000
FRAME_S = 0.01  # PocketSphinx's frame
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # letters and digits, with inner apostrophes ("don't")


def pcm16(audio: np.ndarray, sample_rate: int) -> bytes:
    """16 kHz 16-bit PCM, what the acoustic model was trained on."""
    return (np.clip(resample(audio.astype(np.float32), sample_rate, RATE), -1, 1) * 32767).astype("<i2").tobytes()


class _Pool:
    """Decoders made by `factory` on demand, one per concurrent caller."""

    def __init__(self, factory: Callable[[], object]):
        self.factory = factory
        self.free: queue.SimpleQueue = queue.SimpleQueue()

    @contextmanager
    def decoder(self) -> Iterator:
        try:
            d = self.free.get_nowait()
        except queue.Empty:
            d = self.factory()
        try:
            yield d
        finally:
            self.free.put(d)


def _decoder(**kwargs):
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise EngineUnavailable(f"English alignment needs pocketsphinx (make setup installs it): {exc}") from exc
    return Decoder(samprate=RATE, loglevel="FATAL", **kwargs)


def words_of(text: str) -> list[str]:
    """The words the aligner is given: lower case, punctuation dropped, curly apostrophes straightened."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


class SphinxAligner:
    """Known text -> timed IPA phonemes. `pronounce(word)` gives eSpeak IPA symbols for a word the dictionary
    lacks (None: such words make the alignment fail)."""

    name = "pocketsphinx"

    def __init__(self, pronounce: Callable[[str], list[str]] | None = None):
        self.pronounce = pronounce
        self.pool = _Pool(lambda: _decoder(bestpath=False))
        self._added: dict[str, str] = {}  # words added to the dictionary, for decoders made later
        self._lock = threading.Lock()

    def align(self, audio: np.ndarray, sample_rate: int, text: str) -> list[tuple[str, float, float]] | None:
        """ARPAbet phones (name, start s, duration s), or None when the text does not fit the audio."""
        words = words_of(text)
        if not words:
            return None
        pcm = pcm16(audio, sample_rate)
        with self.pool.decoder() as d:
            if not self._known(d, words):
                return None
            try:
                d.set_align_text(" ".join(words))
                _decode(d, pcm)
                d.set_alignment()
                _decode(d, pcm)
                alignment = d.get_alignment()
            except RuntimeError:  # the text cannot be laid over this audio
                return None
            if alignment is None:
                return None
            return [(p.name, p.start * FRAME_S, p.duration * FRAME_S) for w in alignment for p in w]

    def _known(self, d, words: list[str]) -> bool:
        """Every word in this decoder's dictionary (pronunciations of unknown ones added); False if one has none."""
        for w in dict.fromkeys(words):
            if d.lookup_word(w) is not None:
                continue
            with self._lock:
                phones = self._added.get(w)
                if phones is None and self.pronounce is not None:
                    phones = " ".join(ipa_to_arpabet(self.pronounce(w)))
                    self._added[w] = phones
            if not phones:
                return False
            d.add_word(w, phones, True)
        return True


class SphinxTranscriber:
    """Audio alone -> English words, with the wheel's general language model (one fast pass: no flat-lexicon
    or lattice passes, half the frames scored; chosen by measurement, docs "Audio in")."""

    name = "pocketsphinx-words"

    def __init__(self):
        options = {"fwdflat": False, "bestpath": False, "topn": 2, "beam": 1e-40, "wbeam": 1e-30, "ds": 2}
        self.pool = _Pool(lambda: _decoder(**options))

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        with self.pool.decoder() as d:
            _decode(d, pcm16(audio, sample_rate))
            hyp = d.hyp()
        return hyp.hypstr if hyp is not None else ""


class SphinxRecognizer:
    """Audio alone -> timed IPA phonemes, by phone recognition."""

    name = "pocketsphinx-allphone"

    def __init__(self):
        def make():
            from pocketsphinx import get_model_path

            return _decoder(allphone=get_model_path("en-us/en-us-phone.lm.bin"), lw=2.0, beam=1e-20, pbeam=1e-20)

        self.pool = _Pool(make)

    def recognize(self, audio: np.ndarray, sample_rate: int) -> list[tuple[str, float, float]]:
        """ARPAbet phones (name, start s, duration s) heard in the audio."""
        pcm = pcm16(audio, sample_rate)
        with self.pool.decoder() as d:
            _decode(d, pcm)
            return [(s.word, s.start_frame * FRAME_S, (s.end_frame + 1 - s.start_frame) * FRAME_S) for s in d.seg()]


def _decode(d, pcm: bytes) -> None:
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
