"""The TTS engine protocol and the data it produces."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.errors import InvalidInput


@dataclass(frozen=True)
class Phoneme:
    """One phoneme with times in seconds, relative to the start of the audio it belongs to."""

    symbol: str
    start: float
    duration: float


@dataclass
class SpeechChunk:
    """One sentence of speech."""

    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    text: str
    phonemes: list[Phoneme] | None  # None when the engine has no timings

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass
class Speech:
    """A whole utterance: the chunks joined, phoneme times made absolute."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme] | None
    chunks: list[SpeechChunk] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @classmethod
    def join(cls, chunks: Iterable[SpeechChunk]) -> Speech:
        chunks = list(chunks)
        if not chunks:
            raise InvalidInput("nothing to say: the text produced no speech", field="text")
        sr = chunks[0].sample_rate
        timed = all(c.phonemes is not None for c in chunks)
        phonemes: list[Phoneme] = []
        offset = 0.0
        for c in chunks:
            if timed:
                phonemes += [Phoneme(p.symbol, p.start + offset, p.duration) for p in c.phonemes]
            offset += c.duration
        audio = np.concatenate([c.audio for c in chunks]).astype(np.float32)
        return cls(audio, sr, phonemes if timed else None, chunks)


@dataclass(frozen=True)
class VoiceInfo:
    """A voice and the languages it speaks."""

    id: str
    engine: str
    languages: tuple[str, ...]
    cloned: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "engine": self.engine, "languages": list(self.languages), "cloned": self.cloned}


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-request options; None means the voice's own default."""

    speed: float = 1.0  # > 1 speaks faster
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0

    def __post_init__(self) -> None:
        if not 0.25 <= self.speed <= 4.0:
            raise InvalidInput(f"speed {self.speed} is out of range", allowed="0.25-4.0", field="speed")
        if not 0.0 < self.volume <= 4.0:
            raise InvalidInput(f"volume {self.volume} is out of range", allowed="0-4", field="volume")


class TTSEngine(Protocol):
    name: str
    sample_rate: int
    languages: tuple[str, ...]
    can_clone: bool

    def synthesize_stream(
        self, text: str, language: str = "en", voice: str | None = None, options: SynthesisOptions | None = None
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
        raise InvalidInput(f"the {engine.name} engine has no uploaded voices to delete", field="voice")
    engine.delete_voice(voice_id)
