"""Engine registry: name -> factory. Factories import their heavy packages lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.errors import InvalidInput
from models.tts.base import TTSEngine

_ENGINES: dict[str, Callable[..., TTSEngine]] = {}


def register_engine(name: str) -> Callable:
    def deco(factory: Callable[..., TTSEngine]) -> Callable[..., TTSEngine]:
        _ENGINES[name] = factory
        return factory

    return deco


def available_engines() -> list[str]:
    return sorted(_ENGINES)


def create_engine(name: str, **kwargs: Any) -> TTSEngine:
    if name not in _ENGINES:
        raise InvalidInput(f"unknown TTS engine {name!r}", allowed=available_engines(), field="engine")
    return _ENGINES[name](**kwargs)


@register_engine("piper")
def _piper(**kwargs: Any) -> TTSEngine:
    from models.tts.piper import PiperEngine

    return PiperEngine(**kwargs)
