"""Audio (+ text when known) -> timed phonemes, so any voice drives the face: forced alignment, phone recognition
and a spectral estimate, behind one entry point (`AudioAligner`); `aligned_engine` gives a TTS engine without
timings (XTTS) its own text's alignment."""

from models.align.aligner import SOURCES, Alignment, AudioAligner, check_script, checked_language
from models.align.engine import AlignedEngine, with_alignment

__all__ = [
    "SOURCES",
    "AlignedEngine",
    "Alignment",
    "AudioAligner",
    "check_script",
    "checked_language",
    "with_alignment",
]
