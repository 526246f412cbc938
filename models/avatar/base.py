"""The renderer protocol and what drives it (the registry of renderers is models/avatar/registry.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


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

    def render_batch(self, jobs: Sequence[tuple[Any, Any, range | None]]) -> list[np.ndarray]:
        """Frames of several requests rendered together: (avatar, plan, frame indices or None for all) per job,
        one (n_i, size, size, 3) array back per job."""
