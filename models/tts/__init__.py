"""Text-to-speech engines behind one protocol (`TTSEngine`) and a registry (`create_engine`)."""

from models.tts.base import Phoneme, Speech, SpeechChunk, SynthesisOptions, TTSEngine, VoiceInfo, synthesize
from models.tts.registry import available_engines, create_engine, register_engine

__all__ = [
    "Phoneme",
    "Speech",
    "SpeechChunk",
    "SynthesisOptions",
    "TTSEngine",
    "VoiceInfo",
    "available_engines",
    "create_engine",
    "register_engine",
    "synthesize",
]
