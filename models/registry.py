"""A name -> factory registry, one per kind of engine (TTS engines, renderers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from models.errors import InvalidInput

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, field: str):
        self.kind, self.field = kind, field
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **kwargs: Any) -> T:
        names = self.names()
        if name not in self._factories:
            raise InvalidInput(f"unknown {self.kind} {name!r}", allowed=names, field=self.field)
        return self._factories[name](**kwargs)
