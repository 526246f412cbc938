"""The policy half of serving several live streams (models/pacing.py), without a server: who may ask for more
work, and speech handed from a producer task to a stream, its failure included."""

from __future__ import annotations

import asyncio
import time

import pytest

from models.pacing import Pacer, as_async, next_item, produce

pytestmark = pytest.mark.unit


async def _waits(pacer: Pacer, timeout: float) -> bool:
    try:
        await asyncio.wait_for(pacer.wait(), timeout)
        return False
    except TimeoutError:
        return True


def test_a_lone_stream_runs_ahead_and_an_urgent_one_goes_first():
    streams: set = set()
    ahead, starting = Pacer(streams, ahead_s=2.0), Pacer(streams, ahead_s=2.0)
    streams.add(ahead)
    ahead.t0, ahead.media_s = time.perf_counter(), 5.0  # 5 s sent, just started playing: far ahead
    assert not asyncio.run(_waits(ahead, 0.2))  # alone: full speed
    streams.add(starting)  # nothing played yet: the other stream is urgent
    assert asyncio.run(_waits(ahead, 0.2))
    assert not asyncio.run(_waits(starting, 0.2))  # the urgent stream never waits
    ahead.media_s = 1.0
    assert not asyncio.run(_waits(ahead, 0.2))  # close to its own playback: it goes on


def test_sent_starts_the_clock_at_the_first_bytes_and_counts_media():
    class Live:
        fps = 25.0

        class muxer:  # noqa: N801  (the one attribute a LiveVideo's muxer is read for)
            n_frames = 50

    pacer = Pacer(set(), ahead_s=2.0)
    assert pacer.sent(b"", Live) == b"" and pacer.t0 is None  # nothing sent yet: no clock
    pacer.sent(b"moof", Live)
    assert pacer.t0 is not None and pacer.media_s == 2.0 and 1.9 < pacer.lead() <= 2.0


def test_produce_hands_items_in_order_then_the_end():
    async def scenario():
        out: asyncio.Queue = asyncio.Queue(2)

        async def double(x):
            return 2 * x

        task = asyncio.create_task(produce(as_async([1, 2, 3]), double, out))
        got = [await next_item(out) for _ in range(4)]
        await task
        return got

    assert asyncio.run(scenario()) == [2, 4, 6, None]


def test_a_producer_failure_is_raised_where_the_stream_reads():
    async def scenario():
        out: asyncio.Queue = asyncio.Queue(2)
        calls = []

        async def speak(text):
            if text == "bad":
                raise ValueError("the voice cannot say that")
            return text.upper()

        async def before():
            calls.append("paced")

        asyncio.create_task(produce(as_async(["hi", "bad", "never"]), speak, out, before))
        assert await next_item(out) == "HI"
        with pytest.raises(ValueError, match="cannot say"):
            await next_item(out)
        return calls

    assert asyncio.run(scenario()) == ["paced", "paced"]  # paced before each item, none after the failure
