"""Fail fast while a dependency is down (a circuit breaker per dependency, no BentoML imports here).

A dependency that goes away without closing its connections (a container stopped, a pod deleted, a node lost)
leaves its address silent: connecting to it waits ~40 s before the kernel calls it unreachable, and every
request meanwhile would hang that long. So once a call to a dependency fails to connect (or the readiness probe
finds it down), further calls to it are refused at once, unless a quick probe (bounded, one at a time, at most
every RETRY_S) finds it answering again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# aiohttp's names (BentoML's client): the connection failed or was dropped, nothing was answered
CONNECTION_ERRORS = frozenset(
    {
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "ServerDisconnectedError",
        "ClientOSError",
        "ClientConnectionError",
    }
)
RETRY_S = 1.0  # while a dependency is down, how often a request may probe it


class DependencyDown(Exception):
    """Raised instead of calling a dependency the breaker holds down."""


class Breaker:
    def __init__(self, name: str, probe: Callable[[], Awaitable[object]], probe_s: float):
        self.name, self.probe, self.probe_s = name, probe, probe_s
        self.down_since: float | None = None
        self.last_probe = 0.0
        self._lock = asyncio.Lock()

    def trip(self) -> None:
        self.down_since = self.down_since or time.monotonic()

    def reset(self) -> None:
        self.down_since = None

    async def check(self) -> None:
        """Return when the dependency may be called; raise DependencyDown while it is held down."""
        if self.down_since is None:
            return
        async with self._lock:  # one probe at a time: the others wait for its verdict
            if self.down_since is not None and time.monotonic() - self.last_probe >= RETRY_S:
                self.last_probe = time.monotonic()
                try:
                    await asyncio.wait_for(self.probe(), self.probe_s)
                    self.reset()
                except Exception:  # noqa: BLE001  (no answer: still down)
                    pass
            if self.down_since is not None:
                raise DependencyDown(f"{self.name} is down (for {time.monotonic() - self.down_since:.0f} s)")


class Breakers:
    """Which breaker guards a client method. BentoML sets one function attribute per endpoint on a dependency's
    async client, and only once it is first used, so the clients' attributes are read when a method is unknown."""

    def __init__(self) -> None:
        self._by_method: dict[int, Breaker] = {}
        self._sources: list[tuple[Breaker, Callable[[], dict[str, object]]]] = []
        self.all: dict[str, Breaker] = {}

    def add(self, breaker: Breaker, methods: Callable[[], dict[str, object]]) -> None:
        """`methods()`: the client's instance attributes, read when needed."""
        self.all[breaker.name] = breaker
        self._sources.append((breaker, methods))

    def of(self, method: object) -> Breaker | None:
        if id(method) not in self._by_method:
            for breaker, methods in self._sources:
                for m in methods().values():
                    if callable(m):
                        self._by_method[id(m)] = breaker
        return self._by_method.get(id(method))
