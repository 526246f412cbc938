"""Live streams sharing a CPU, and speech handed from a producer to a stream: the policy half of serving several
streams at once (the served orchestration is services/streaming.py; the library's own stream is models/stream.py).
Plain asyncio: nothing here knows about HTTP or BentoML.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any


class Pacer:
    """Shares the CPU between the live streams of a worker by need: a stream waits before asking for more work
    while it is far ahead of its own playback (`ahead_s`), or moderately ahead while another stream is close to
    running dry (just started, or behind). A lone stream runs at full speed (its complete MP4 is ready sooner).
    Its lead is the media sent minus the time since its first bytes (when its player started, about)."""

    URGENT_S = 0.6  # a stream with less buffered than this goes first

    def __init__(self, streams: set[Pacer], ahead_s: float):
        self.streams, self.ahead_s = streams, ahead_s
        self.t0: float | None = None
        self.media_s = 0.0
        self.created = time.perf_counter()

    def lead(self) -> float:
        return 0.0 if self.t0 is None else self.media_s - (time.perf_counter() - self.t0)

    def deadline(self, at_s: float) -> float:
        """When this stream's player reaches media time `at_s` (perf_counter). Before its first bytes, as if it
        had started playing when it began: its first piece is as late as it has waited, and its later pieces
        come after other streams' first ones."""
        return (self.created if self.t0 is None else self.t0) + at_s

    def sent(self, data: bytes, live) -> bytes:
        """Note bytes going out of `live` (a models.stream.LiveVideo): its media so far and, once, the start."""
        if self.t0 is None and data:
            self.t0 = time.perf_counter()
        self.media_s = live.muxer.n_frames / live.fps
        return data

    async def wait(self) -> None:
        while self.t0 is not None:
            others = [p.lead() for p in self.streams if p is not self]
            lead = self.lead()
            limit = self.ahead_s if not any(o < self.URGENT_S for o in others) else 2 * self.URGENT_S
            if not others or lead <= limit:
                return
            await asyncio.sleep(min(lead - limit, 0.05))


class DeadlineGate:
    """Calls to services that each work one call at a time (a BentoML service runs its sync APIs one at a time),
    ordered earliest deadline first, so a stream close to running dry, or one not yet started, is served before
    one far ahead (a service alone would serve them in arrival order). One gate holds the calls to every service
    (`key` names the service): at most `capacity` are in flight in all, so work far ahead waits while nearer work
    runs in the other service; and a service with nothing in flight takes its earliest waiter anyway, so none
    idles while it has work. A capacity of 2 keeps the next call queued in a service while one runs."""

    def __init__(self, capacity: int = 2):
        self.capacity, self.busy = capacity, 0
        self.in_flight: dict[Any, int] = {}
        self.waiting: list[tuple[float, int, Any, asyncio.Future]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, deadline: float, key: Any = None) -> AsyncIterator[None]:
        granted = asyncio.get_running_loop().create_future()
        self.waiting.append((deadline, next(self._order), key, granted))
        self._grant()
        try:
            await granted
        except BaseException:
            if granted.done() and not granted.cancelled():  # handed the slot as it was cancelled: pass it on
                self._release(key)
            raise  # a cancelled waiter's future is done: _grant drops it
        try:
            yield
        finally:
            self._release(key)

    def _grant(self) -> None:
        """Hand slots to the waiters that may start, earliest deadline first."""
        kept = []
        for item in sorted(self.waiting):
            _, _, key, granted = item
            if granted.done():
                continue
            if self.busy < self.capacity or not self.in_flight.get(key):
                self.busy += 1
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
                granted.set_result(None)
            else:
                kept.append(item)
        self.waiting = kept

    def _release(self, key: Any) -> None:
        self.busy -= 1
        self.in_flight[key] -= 1
        self._grant()


async def produce(items: AsyncIterator[Any], make: Callable[[Any], Awaitable[Any]], out: asyncio.Queue,
                  before: Callable[[], Awaitable[None]] | None = None) -> None:  # fmt: skip
    """Turn each item into `await make(item)` in order, into `out`; then None, or the exception that stopped it
    (the consumer raises it: see `next_item`). `before()` is awaited ahead of each item (e.g. a Pacer's wait)."""
    try:
        async for item in items:
            if before:
                await before()
            await out.put(await make(item))
        await out.put(None)
    except Exception as exc:  # noqa: BLE001  (handed to the consumer, which fails with it)
        await out.put(exc)


async def next_item(queue: asyncio.Queue):
    """The next item of a `produce` queue (None at the end); the producer's failure is raised here."""
    item = await queue.get()
    if isinstance(item, BaseException):
        raise item
    return item


async def as_async(items: Iterable) -> AsyncIterator:
    for item in items:
        yield item
