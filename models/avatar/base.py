"""The renderer protocol and its registry (name -> factory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.errors import InvalidInput


@dataclass
class SpeechTrack:
    """What drives the face: the audio and, when the engine has them, phoneme timings (symbol, start s, dur s)."""

    audio: np.ndarray
    sample_rate: int
    phonemes: Sequence[tuple[str, float, float]] | None = None

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class Renderer(Protocol):
    name: str
    size: int
    fps: float

    def prepare(self, image: np.ndarray) -> Any:
        """Register a portrait: find the face once, crop, measure. Raises NoFaceFound."""

    def plan(self, avatar: Any, speech: SpeechTrack, seed: int = 0) -> Any:
        """Per-frame controls for one utterance."""

    def frames(self, avatar: Any, plan: Any) -> Iterator[np.ndarray]:
        """Stream of (size, size, 3) uint8 RGB frames."""

    def render_batch(self, jobs: Sequence[tuple[Any, Any]]) -> list[np.ndarray]:
        """Frames of several requests rendered together: one (n_i, size, size, 3) array per job."""


_RENDERERS: dict[str, Callable[..., Renderer]] = {}


def register_renderer(name: str) -> Callable:
    def deco(factory: Callable[..., Renderer]) -> Callable[..., Renderer]:
        _RENDERERS[name] = factory
        return factory

    return deco


def available_renderers() -> list[str]:
    _load_builtin()
    return sorted(_RENDERERS)


def create_renderer(name: str, **kwargs: Any) -> Renderer:
    _load_builtin()
    if name not in _RENDERERS:
        raise InvalidInput(f"unknown renderer {name!r}", allowed=sorted(_RENDERERS), field="renderer")
    return _RENDERERS[name](**kwargs)


def _load_builtin() -> None:
    import models.avatar.portrait  # noqa: F401  (registers "portrait")
