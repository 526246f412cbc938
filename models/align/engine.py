"""A TTS engine without phoneme timings (XTTS, and any later one) given them by the aligner, with its own text:
a cloned voice's lip sync then comes from the same phonemes as Piper's. Engines with timings pass through."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from models.align.aligner import AudioAligner
from models.errors import AvatarError
from models.tts.base import SpeechChunk, SynthesisOptions

log = logging.getLogger(__name__)


class AlignedEngine:
    """Wraps an engine (the TTSEngine protocol); every other attribute is the engine's own."""

    def __init__(self, engine, aligner: AudioAligner):
        self.engine, self.aligner = engine, aligner

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def synthesize_stream(self, text: str, language: str = "en", voice: str | None = None,
                          options: SynthesisOptions | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
        chunks = self.engine.synthesize_stream(text, language, voice, options)  # bad input raises here, at once
        return (c if c.phonemes is not None else self._aligned(c, language) for c in chunks)

    def _aligned(self, chunk: SpeechChunk, language: str) -> SpeechChunk:
        """The chunk with timings laid over its own text; as it was (loudness) where no aligner can run."""
        try:
            found = self.aligner.align(chunk.audio, chunk.sample_rate, chunk.text, language)
        except AvatarError as exc:  # a language no aligner knows: the loudness mouth, said in the metadata
            log.info("no alignment for a %s sentence (%s): loudness drives the mouth", language, exc.message)
            return chunk
        return SpeechChunk(chunk.audio, chunk.sample_rate, chunk.text, found.phonemes, found.source)


def with_alignment(engine, aligner: AudioAligner) -> AlignedEngine:
    return engine if isinstance(engine, AlignedEngine) else AlignedEngine(engine, aligner)
