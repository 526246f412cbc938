"""The per-dependency circuit breaker: a dependency found down is refused at once until a bounded probe finds it
answering again (services/breaker.py; no BentoML involved)."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.breaker import Breaker, Breakers, DependencyDown

pytestmark = pytest.mark.unit


class Probe:
    def __init__(self, answers: bool = True, hang: bool = False):
        self.answers, self.hang, self.calls = answers, hang, 0

    async def __call__(self):
        self.calls += 1
        if self.hang:
            await asyncio.sleep(60)  # a silent address: connecting would take ~40 s
        if not self.answers:
            raise ConnectionError("refused")
        return {"ready": True}


def test_a_closed_breaker_lets_calls_through_without_probing():
    probe = Probe()
    asyncio.run(Breaker("avatar", probe, 1.0).check())
    assert probe.calls == 0


def test_a_tripped_breaker_refuses_within_the_probe_bound_and_closes_when_the_probe_answers():
    async def scenario():
        probe = Probe(hang=True)
        breaker = Breaker("avatar", probe, probe_s=0.2)
        breaker.trip()
        start = time.monotonic()
        with pytest.raises(DependencyDown, match="avatar is down"):
            await breaker.check()
        assert time.monotonic() - start < 1.0  # bounded by probe_s, not by the network
        with pytest.raises(DependencyDown):  # within RETRY_S: refused without another probe
            await breaker.check()
        assert probe.calls == 1
        breaker.last_probe -= 5  # later: the dependency is back
        probe.hang = False
        await breaker.check()
        assert breaker.down_since is None and probe.calls == 2

    asyncio.run(scenario())


def test_concurrent_callers_share_one_probe():
    async def scenario():
        probe = Probe(answers=False)
        breaker = Breaker("tts", probe, probe_s=0.5)
        breaker.trip()
        results = await asyncio.gather(*(breaker.check() for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, DependencyDown) for r in results) and probe.calls == 1

    asyncio.run(scenario())


def test_breakers_know_which_dependency_a_client_method_calls():
    async def render(): ...
    async def synth(): ...

    breakers = Breakers()
    avatar, tts = Breaker("avatar", Probe(), 1.0), Breaker("tts", Probe(), 1.0)
    client = {"endpoints": {}}  # filled later, as BentoML's client sets its endpoint functions on first use
    breakers.add(avatar, lambda: client)
    breakers.add(tts, lambda: {"synthesize": synth})
    assert breakers.of(render) is None
    client["render"] = render
    assert breakers.of(render) is avatar and breakers.of(synth) is tts and breakers.of(print) is None
    assert set(breakers.all) == {"avatar", "tts"}
