"""Small helpers shared by the service adapters (no BentoML imports here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from models.errors import AvatarError
from services.schemas import Failure

T = TypeVar("T")


def capture(fn: Callable[[], T], on_error: Callable[[Failure], T]) -> T:
    """Run one item of a batch; bad input becomes that item's error instead of failing the whole batch."""
    try:
        return fn()
    except AvatarError as exc:
        return on_error(Failure(status=exc.status, body=exc.to_dict()))


def workers() -> int:
    return max(1, os.cpu_count() or 1)
