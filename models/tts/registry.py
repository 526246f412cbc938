"""TTS engine registry: name -> factory. Factories import their heavy packages lazily."""

from __future__ import annotations

from typing import Any

from models.registry import Registry
from models.tts.base import TTSEngine

ENGINES: Registry[TTSEngine] = Registry("TTS engine", "engine")
register_engine = ENGINES.register
available_engines = ENGINES.names
create_engine = ENGINES.create


@register_engine("piper")
def _piper(**kwargs: Any) -> TTSEngine:
    from models.tts.piper import PiperEngine

    return PiperEngine(**kwargs)
