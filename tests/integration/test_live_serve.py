"""Hands-free conversation over `/api/v1/live` against a real `bentoml serve` (Silero VAD in the speech service,
the tiny random Whisper, the fake LLM): a spoken question, silence, then a second question spoken while the
answer plays -> two turns, the first interrupted and remembered only as far as it was heard; and bad clients get
a clear close code and reason."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

from models.media.audio import resample
from models.tts import create_engine, synthesize

pytestmark = pytest.mark.integration
websockets = pytest.importorskip("websockets")
RATE = 16000


@pytest.fixture
def server(serve, fake_llm, tiny_whisper):
    if not tiny_whisper:
        pytest.skip("speech recognition needs faster-whisper and transformers")
    return serve("services.pipeline:AvatarPipeline", AVATAR__LLM__BASE_URL=fake_llm.base_url, AVATAR__LLM__MODEL="f")


def speech(text: str) -> bytes:
    s = synthesize(create_engine("piper"), text)
    return (resample(s.audio, s.sample_rate, RATE) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * RATE) * 2)


async def talk(url: str, first: bytes, second: bytes) -> tuple[list, list[int]]:
    """Say `first`, then silence until the answer's first fragment arrives, then `second` over it, in real time
    (30 ms frames); returns every JSON event and the sizes of the binary fragments received."""
    events, fragments, first_at = [], [], []
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/live", max_size=None) as ws:
        await ws.send(json.dumps({"language": "en"}))

        async def receive():
            async for message in ws:
                if isinstance(message, bytes):
                    fragments.append(len(message))
                    first_at.append(first_at[0] if first_at else time.monotonic())
                else:
                    events.append(json.loads(message))

        reader = asyncio.create_task(receive())

        async def say(pcm: bytes, until=None):
            for i in range(0, len(pcm), 960):
                await ws.send(pcm[i : i + 960])
                await asyncio.sleep(0.03)
                if until and until():
                    return

        await say(silence(0.3) + first)
        # the answer has played for ~2 s (a player starts at its first fragment): its first sentence was heard
        await say(silence(15.0), until=lambda: first_at and time.monotonic() - first_at[0] > 2.0)
        await say(second + silence(1.0))
        deadline = time.monotonic() + 60
        while not any(e["type"] == "done" and e["turn"] == 2 for e in events) and time.monotonic() < deadline:
            await say(silence(0.3))  # the microphone stays open while the second answer comes
        reader.cancel()
    return events, fragments


def test_talking_over_the_answer_interrupts_it_and_history_keeps_what_was_heard(server, fake_llm):
    fake_llm.mode, fake_llm.delay_s = "stream", 0.04
    fake_llm.reply = ("Sure. The weather today is sunny and warm. Later there may be some clouds over the hills. "
                      "Tomorrow looks much the same, with a light wind from the west.")  # fmt: skip
    try:
        events, fragments = asyncio.run(
            talk(server.url, speech("What is the weather like today?"), speech("And what about tomorrow?"))
        )
    finally:
        fake_llm.delay_s = 0.0
    kinds = [e["type"] for e in events]
    assert kinds[0] == "listening" and kinds.count("speech_started") >= 2 and kinds.count("speech_ended") >= 2
    cut = events[kinds.index("interrupted")]
    assert cut["turn"] == 1 and cut["spoken"].startswith("Sure.") and "Tomorrow" not in cut["spoken"]
    first = [e for e in events if e.get("turn") == 1 and e["type"] == "done"]  # made faster than it plays
    assert not first or cut["at_s"] < first[0]["video_s"]  # it was still playing: the client stops it
    second = [e for e in events if e.get("turn") == 2]
    assert [e["type"] for e in second][0] == "transcript" and second[-1]["type"] == "done"
    assert second[-1]["video_s"] > 3 and len(fragments) > 5
    # the second question's request carried the first answer as far as it was heard, not the whole reply
    history = fake_llm.requests[-1]["body"]["messages"]
    assistant = [m["content"] for m in history if m["role"] == "assistant"]
    assert assistant[-1] == cut["spoken"] and len(assistant[-1]) < len(fake_llm.reply)


async def one_turn(url: str, question: bytes, session: str | None) -> tuple[list[dict], object]:
    """A socket that says `question` (faster than real time), waits for the answer's `done`, and is then cut
    without a close frame (a dropped network, Cloud Run's timeout); its events."""
    events = []
    ws = await websockets.connect(url.replace("http", "ws") + "/api/v1/live", max_size=None)
    await ws.send(json.dumps({"language": "en", "session": session}))
    data = silence(0.3) + question + silence(1.2)
    for i in range(0, len(data), 3200):
        await ws.send(data[i : i + 3200])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(e["type"] in ("done", "error") for e in events):
        message = await asyncio.wait_for(ws.recv(), 30)
        if isinstance(message, str):
            events.append(json.loads(message))
    ws.transport.abort()  # no close frame
    return events, ws


def test_a_dropped_socket_resumes_its_conversation_with_the_session_id(server, fake_llm):
    """What the page does when its socket drops: a new socket with the `session` of the `listening` event; the
    conversation goes on with its history (the LLM's next request carries the first exchange)."""
    fake_llm.mode, fake_llm.reply = "stream", "It is sunny today."
    first, _ = asyncio.run(one_turn(server.url, speech("What is the weather like today?"), None))
    session = first[0]["session"]
    assert first[0]["type"] == "listening" and first[-1]["type"] == "done", first
    heard = next(e["text"] for e in first if e["type"] == "transcript")
    second, _ = asyncio.run(one_turn(server.url, speech("And tomorrow?"), session))
    assert second[0] == {**second[0], "type": "listening", "session": session}
    assert second[-1]["type"] == "done" and second[-1]["turn"] >= 1, second
    history = fake_llm.requests[-1]["body"]["messages"]
    said = [(m["role"], m["content"]) for m in history if m["role"] in ("user", "assistant")]
    assert ("user", heard) in said and ("assistant", "It is sunny today.") in said, said
    assert [role for role, _ in said][-3:] == ["user", "assistant", "user"]  # then the new question (the tiny random
    # Whisper hears every question as the same words)


async def closed(url: str, *messages) -> tuple[int, str]:
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/live") as ws:
        for m in messages:
            await ws.send(m)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 20)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code, exc.rcvd.reason


@pytest.mark.parametrize(
    "messages,code,words",
    [
        (["not json"], 1007, "JSON object"),
        ([json.dumps({"sample_rate": 44100})], 1007, "16000"),
        ([json.dumps({"colour": "red"})], 1007, "colour"),
        ([json.dumps({}), b"\x00\x01\x02"], 1007, "even number"),
        ([json.dumps({}), bytes(70000)], 1009, "at most"),
        ([json.dumps({}), "hello?"], 1003, "playback"),
        ([json.dumps({"persona": "nobody"})], 1008, "nobody"),
    ],
)
def test_bad_clients_get_a_clear_close(server, messages, code, words):
    got, reason = asyncio.run(closed(server.url, *messages))
    assert got == code and words in reason, (got, reason)


def test_a_server_without_an_llm_closes_with_the_reason(serve):
    plain = serve("services.pipeline:AvatarPipeline")
    got, reason = asyncio.run(closed(plain.url, json.dumps({})))
    assert got == 1011 and "base_url" in reason


async def drop_mid_turn(url: str, question: bytes) -> None:
    """Say the question (faster than real time: the VAD counts samples), then hang up once the answer starts."""
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/live", max_size=None) as ws:
        await ws.send(json.dumps({"language": "en"}))
        data = question + silence(1.0)
        for i in range(0, len(data), 3200):
            await ws.send(data[i : i + 3200])
        async for message in ws:
            if isinstance(message, bytes) or json.loads(message)["type"] in ("transcript", "error"):
                return  # the socket drops here, in the middle of the turn


def drop(server, question: bytes) -> None:
    """One dropped turn; a connection the server reset fails with the end of the server's log (a rare reset in
    this soak has not been explained yet: the log says what the server was doing)."""
    try:
        asyncio.run(drop_mid_turn(server.url, question))
    except (ConnectionError, websockets.ConnectionClosedError) as exc:
        raise AssertionError(f"{exc!r}; the server's log ends:\n{server.log.read_text()[-4000:]}") from exc


def test_dropped_sockets_cancel_their_turns_and_memory_stays_flat(server, fake_llm):
    """A leak per dropped turn grows memory in every block of turns; an allocator's high-water mark steps up
    once, when a turn cut at a new point gives Piper or Whisper an input larger than any before (a CI run saw
    +124 MB over 45 turns where this machine sees +6 to +10, and another two steps of 18 and 26 MB in the TTS
    service): so of four blocks, at least two must be flat. The blocks are printed by service, to tell which one
    grew."""
    fake_llm.mode, fake_llm.delay_s = "stream", 0.01
    question = speech("What is the weather like today?")
    services = ("tts", "avatar", "avatar-pipeline")
    try:
        for _ in range(15):  # warm-up: pools, caches, allocator arenas
            drop(server, question)
        marks = [{s: server.rss_mb(s) for s in services}]
        for _ in range(4):
            for _ in range(15):
                drop(server, question)
            marks.append({s: server.rss_mb(s) for s in services})
    finally:
        fake_llm.delay_s = 0.0
    blocks = [{s: round(b[s] - a[s], 1) for s in services} for a, b in itertools.pairwise(marks)]
    print(f"live soak: MB per block of 15 dropped turns, by service: {blocks}")
    growths = sorted(sum(b.values()) for b in blocks)
    assert growths[1] < 12, f"memory grew in three blocks of 15 dropped turns or more: {blocks}"
    events, _ = asyncio.run(talk(server.url, question, speech("And tomorrow?")))  # the server still converses
    assert any(e["type"] == "done" and e["turn"] == 2 for e in events)
