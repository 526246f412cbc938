"""The TTS engine protocol and the data it produces (speech, phoneme timings, per-request options)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class Phoneme:
    """One phoneme with times in seconds, relative to the start of the audio it belongs to."""

    symbol: str
    start: float
    duration: float


# Where a face's mouth comes from, best first: "phonemes", the engine's own timings; then timings found in the
# audio (models/align): "aligned" to a known text, "transcribed" (to the words heard), "recognized" (phone by
# phone), "spectral" (formants); "loudness", the last resort when nothing else could run.
MOUTH_SOURCES = ("phonemes", "aligned", "transcribed", "recognized", "spectral", "loudness")


@dataclass
class SpeechChunk:
    """One sentence of speech."""

    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    text: str
    phonemes: list[Phoneme] | None  # None when the engine has no timings
    source: str | None = None  # of the timings (MOUTH_SOURCES); None: the engine's own, or none

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def mouth(self) -> str:
        return self.source or ("phonemes" if self.phonemes is not None else "loudness")


@dataclass
class Speech:
    """A whole utterance: the chunks joined, phoneme times made absolute."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme] | None  # None unless every chunk has timings
    chunks: list[SpeechChunk] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def mouth(self) -> str:
        """The weakest source among the chunks (a mouth is only as good as its worst sentence)."""
        if not self.chunks:
            return "phonemes" if self.phonemes is not None else "loudness"
        return max((c.mouth for c in self.chunks), key=MOUTH_SOURCES.index)

    @classmethod
    def join(cls, chunks: Iterable[SpeechChunk]) -> Speech:
        """Concatenate the chunks' audio and shift each chunk's phonemes by the audio before it."""
        chunks = list(chunks)
        if not chunks:
            raise InvalidInput("nothing to say: the text produced no speech", field="text")
        rate = chunks[0].sample_rate
        if any(c.sample_rate != rate for c in chunks):
            raise ValueError(f"chunks with different sample rates: {sorted({c.sample_rate for c in chunks})}")
        audio = np.concatenate([c.audio for c in chunks]).astype(np.float32, copy=False)
        return cls(audio, rate, _absolute_phonemes(chunks), chunks)


def _absolute_phonemes(chunks: list[SpeechChunk]) -> list[Phoneme] | None:
    """Offsets come from sample counts, not summed float durations, so long utterances do not drift."""
    if any(c.phonemes is None for c in chunks):
        return None  # partial timings would misplace every phoneme after the gap
    out: list[Phoneme] = []
    samples = 0
    for c in chunks:
        offset = samples / c.sample_rate
        out += [Phoneme(p.symbol, p.start + offset, p.duration) for p in c.phonemes]
        samples += len(c.audio)
    return out


@dataclass(frozen=True)
class VoiceInfo:
    """A voice and the languages it speaks."""

    id: str
    engine: str
    languages: tuple[str, ...]
    cloned: bool = False

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "engine": self.engine,
            "languages": list(self.languages),
            "cloned": self.cloned,
        }


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-request options (Piper's SynthesisConfig, engine-neutral); None means the voice's own default."""

    speed: float = 1.0  # > 1 speaks faster; Piper: length_scale = voice default / speed
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0
    # A caller waits on this speech before anything else can happen (a speech-only request, the first piece of a
    # video): the engine may keep every core busy for it, for lower latency. False for speech made beside the
    # rendering, whose CPU that would take.
    urgent: bool = False

    def __post_init__(self) -> None:
        _check_range("speed", self.speed, 0.25, 4.0)
        _check_range("volume", self.volume, 0.0, 4.0)
        for name in ("noise_scale", "noise_w_scale"):
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), 0.0, 2.0)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    # Type first: a string or None from a loose caller would otherwise raise TypeError, not a clear 400.
    # NaN fails the range test by itself.
    if not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{name} {value!r} is out of range", allowed=f"{low:g}-{high:g}", field=name)


class TTSEngine(Protocol):
    name: str
    sample_rate: int
    languages: tuple[str, ...]
    can_clone: bool

    def synthesize_stream(
        self,
        text: str,
        language: str = "en",
        voice: str | None = None,
        options: SynthesisOptions | None = None,
    ) -> Iterator[SpeechChunk]: ...

    def voices(self) -> list[VoiceInfo]: ...


def synthesize(
    engine: TTSEngine,
    text: str,
    language: str = "en",
    voice: str | None = None,
    options: SynthesisOptions | None = None,
) -> Speech:
    """The whole utterance (wraps the engine's sentence stream)."""
    return Speech.join(engine.synthesize_stream(text, language, voice, options))


def clone_voice(engine: TTSEngine, name: str | None, clip: bytes) -> dict:
    """Register a cloned voice with an engine that can clone; a clear error otherwise."""
    if not getattr(engine, "can_clone", False):
        raise InvalidInput(
            f"the {engine.name} engine cannot clone voices",
            allowed="the xtts engine: import XTTS-v2 weights with `scripts/import_models.py xtts --from DIR`",
            field="clip",
        )
    return engine.add_voice(name, clip)


def remove_voice(engine: TTSEngine, voice_id: str) -> None:
    if not getattr(engine, "can_clone", False):
        raise NotFound(f"no uploaded voice {voice_id!r}: the {engine.name} engine has none", field="voice")
    engine.delete_voice(voice_id)
