"""The policy half of serving several live streams (models/pacing.py), without a server: who may ask for more
work, and speech handed from a producer task to a stream, its failure included."""

from __future__ import annotations

import asyncio
import time

import pytest

from models.pacing import DeadlineGate, Pacer, as_async, next_item, produce

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


def test_deadline_is_the_players_clock_or_the_streams_start():
    pacer = Pacer(set(), ahead_s=2.0)
    assert pacer.deadline(0.0) == pacer.created and pacer.deadline(1.5) == pacer.created + 1.5  # not playing yet
    pacer.t0 = pacer.created + 0.3  # first bytes out: its player's clock
    assert pacer.deadline(2.0) == pytest.approx(pacer.created + 2.3)


def test_the_gate_serves_the_earliest_deadline_first_within_its_capacity():
    async def scenario():
        gate, order, running = DeadlineGate(capacity=1), [], []
        release = asyncio.Event()

        async def call(name: str, deadline: float) -> None:
            async with gate.slot(deadline):
                running.append(name)
                assert len(running) == 1  # never more in flight than the capacity
                order.append(name)
                if name == "first":
                    await release.wait()
                await asyncio.sleep(0)
                running.remove(name)

        first = asyncio.create_task(call("first", 5.0))
        await asyncio.sleep(0.01)  # "first" holds the only slot; the others queue in arrival order...
        later = [asyncio.create_task(call(n, d)) for n, d in (("far", 9.0), ("soon", 1.0), ("mid", 4.0))]
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, *later)
        return order, gate.busy

    order, busy = asyncio.run(scenario())
    assert order == ["first", "soon", "mid", "far"] and busy == 0  # ...and run by deadline; the slot is free after


def test_a_cancelled_waiter_gives_up_its_place_and_leaks_no_slot():
    async def scenario():
        gate = DeadlineGate(capacity=1)
        hold, done = asyncio.Event(), []

        async def call(name: str, deadline: float) -> None:
            async with gate.slot(deadline):
                if name == "holder":
                    await hold.wait()
                done.append(name)

        holder = asyncio.create_task(call("holder", 0.0))
        await asyncio.sleep(0.01)
        gone, kept = asyncio.create_task(call("gone", 1.0)), asyncio.create_task(call("kept", 2.0))
        await asyncio.sleep(0.01)
        gone.cancel()  # a stream that ended while its call waited
        hold.set()
        await asyncio.wait_for(asyncio.gather(holder, kept), 5)
        with pytest.raises(asyncio.CancelledError):
            await gone
        return done, gate.busy, gate.waiting

    done, busy, waiting = asyncio.run(scenario())
    assert done == ["holder", "kept"] and busy == 0 and not waiting


def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on():
    async def scenario():
        gate, done, tasks = DeadlineGate(capacity=1), [], {}

        async def call(name: str, deadline: float) -> None:
            async with gate.slot(deadline):
                await asyncio.sleep(0.01)
                done.append(name)
            if name == "holder":
                tasks["a"].cancel()  # the slot was just handed to "a", which has not run yet

        holder = asyncio.create_task(call("holder", 0.0))
        await asyncio.sleep(0)
        tasks["a"], tasks["b"] = asyncio.create_task(call("a", 1.0)), asyncio.create_task(call("b", 2.0))
        await asyncio.wait_for(asyncio.gather(holder, tasks["b"]), 5)  # a leaked slot would leave "b" waiting
        with pytest.raises(asyncio.CancelledError):
            await tasks["a"]
        return done, gate.busy

    done, busy = asyncio.run(scenario())
    assert done == ["holder", "b"] and busy == 0


def test_one_gate_for_two_services_orders_by_deadline_and_never_leaves_a_service_idle_with_work():
    async def scenario():
        gate, started, release = DeadlineGate(capacity=2), [], {}

        async def call(name: str, service: str, deadline: float) -> None:
            release[name] = asyncio.Event()
            async with gate.slot(deadline, service):
                started.append(name)
                await release[name].wait()

        async def step(*names: str) -> list[str]:
            for name in names:
                release[name].set()
            await asyncio.sleep(0.01)
            return list(started)

        tasks = [asyncio.create_task(call("speech a", "tts", 5.0)), asyncio.create_task(call("speech b", "tts", 6.0))]
        await asyncio.sleep(0.01)  # both slots taken by the TTS service
        tasks += [asyncio.create_task(call(*c)) for c in (("speech far", "tts", 9.0), ("chunk soon", "avatar", 1.0),
                                                          ("chunk next", "avatar", 2.0))]  # fmt: skip
        seen = [await step()]  # the idle avatar service takes its earliest waiter, beyond the capacity
        seen.append(await step("speech a"))  # two in flight again: neither waiter may start
        seen.append(await step("chunk soon"))  # a free slot goes to the earlier deadline, in either service
        seen.append(await step("speech b"))
        await step("chunk next", "speech far")
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return seen, gate.busy, gate.waiting

    seen, busy, waiting = asyncio.run(scenario())
    assert seen == [
        ["speech a", "speech b", "chunk soon"],
        ["speech a", "speech b", "chunk soon"],
        ["speech a", "speech b", "chunk soon", "chunk next"],
        ["speech a", "speech b", "chunk soon", "chunk next", "speech far"],
    ]
    assert busy == 0 and not waiting
