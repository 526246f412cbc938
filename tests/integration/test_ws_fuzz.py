"""The WebSocket protocols fuzzed against one real `bentoml serve`: random and malformed frames, messages in the
wrong order, odd-length and oversized PCM, floods of tiny frames, broken WebSocket framing on a raw TCP socket,
and abrupt closes (a TCP reset or FIN without a close frame; a close frame in the middle of a stream), on both
sockets: `/api/v1/live` (hands-free conversation, with the fake LLM) and `/api/v1/animate/live` (a face for a
voice). The conversation routes (services/routes_conversation.py) have no socket.

Each case must end in a close code the protocol defines (or, for an abrupt close, nothing at all) within a
deadline, never a hang; the server stays ready and a normal session still works; its log never shows an
unhandled exception. A soak repeats a mix of the cases and checks that the API worker's memory, open files and
sockets stay flat. The seed is FUZZ_SEED (default below); a failure names the case."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from services.launcher import Server

pytestmark = pytest.mark.integration
websockets = pytest.importorskip("websockets")

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("FUZZ_SEED", "20240611"))
ROUNDS = max(int(os.environ.get("FUZZ_ROUNDS", "6")), 5)  # of the soak (a longer soak: FUZZ_ROUNDS=30)
LIVE, ANIMATE = "/api/v1/live", "/api/v1/animate/live"
DEADLINE_S = 20.0  # a case that has not ended by then hangs
WS_MAX = 16 * 1024 * 1024  # uvicorn's ws_max_size: a message over it is refused by the server's framing
LIVE_MAX = 2 * 16000 * 2  # routes_live.MAX_FRAME: 2 s of 16 kHz 16-bit PCM
# close codes each protocol defines (module docstrings); 1002/1007/1009 also come from the framing itself
CODES = {LIVE: {1002, 1003, 1007, 1008, 1009, 4408}, ANIMATE: {1000, 1002, 1003, 1007, 1008, 1009, 4408}}
UNHANDLED = re.compile(r"Traceback|Exception in ASGI application|Task exception was never retrieved|"
                       r"exception was never retrieved|Unhandled exception")  # fmt: skip
# uvicorn's own report of a text frame that is not UTF-8, which it refuses with 1007 (handled, with a traceback)
HANDLED = re.compile(r"Invalid UTF-8 sequence received from client\.[^\n]*\nTraceback \(most recent call last\):\n"
                     r"(?:[ \t][^\n]*\n)*UnicodeDecodeError: [^\n]*\n")  # fmt: skip
EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Disconnect|Disconnected|Exit|Interrupt)\b")
HELLO = {LIVE: json.dumps({"language": "en"}), ANIMATE: json.dumps({"sample_rate": 16000})}


# the server ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm):
    tmp = tmp_path_factory.mktemp("ws-fuzz")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_PROFILE": "cpu", "AVATAR_FPS": "12",
           "AVATAR__LLM__BASE_URL": fake_llm.base_url, "AVATAR__LLM__MODEL": "f"}  # fmt: skip
    s = Server("services.pipeline:AvatarPipeline", env, tmp / "serve.log", cwd=ROOT).start()
    try:
        s.wait_ready()
        s.log_seen = 0  # how far the log has been checked
        yield s
        _check_log(s)
    finally:
        s.stop()
    _check_log(s)  # what the workers logged while they shut down (a task's exception is logged when collected)


@pytest.fixture
def srv(server):
    """The server, its log checked after each test."""
    yield server
    _check_log(server)


def _check_log(server: Server) -> None:
    text = server.log.read_text(errors="replace")
    new, server.log_seen = text[server.log_seen :], len(text)
    new = HANDLED.sub("", new)
    found = UNHANDLED.search(new)
    assert found is None, f"the server's log shows an unhandled exception:\n{_excerpt(new, found.start())}"


def _excerpt(log: str, at: int) -> str:
    """What led up to the exception at `at`, and its traceback's last frames down to the exception itself (CI
    prints only the end of a long failure)."""
    before, lines = log[max(0, at - 800) : at], log[at:].splitlines()[:400]
    end = next((i for i, ln in enumerate(lines) if i and EXCEPTION_LINE.match(ln)), len(lines) - 1)
    return before + "\n".join(lines[:2] + ["  ..."] + lines[max(2, end - 20) : end + 1])


def _healthy(server: Server, what: str) -> None:
    r = httpx.get(server.url + "/readyz", timeout=10)
    assert r.status_code == 200, f"not ready after {what}: {r.status_code} {r.text[:200]}"


# a client that records how the server ended the conversation -----------------------------------------------------
@dataclass
class Outcome:
    code: int | None = None  # the server's close code (1006: the TCP connection ended without a close frame)
    reason: str = ""
    events: list[dict] = field(default_factory=list)
    fragments: int = 0

    def kinds(self) -> list[str]:
        return [e.get("type") for e in self.events]


# text, binary, a pause (s), "UNTIL" (wait for the `until` event), ("abort",) a TCP reset, ("fin",) a TCP close
# without a close frame, ("close", code[, reason]) a close frame
Step = str | bytes | float | tuple


async def session(url: str, path: str, steps: list[Step], *, read: bool = True, until: str | None = None) -> Outcome:
    """Send `steps` (reading everything the server sends meanwhile, unless `read` is False), then wait for the
    server to close. `until`: the event type an "UNTIL" step waits for (or an `error` event, or the end)."""
    out = Outcome()
    async with asyncio.timeout(DEADLINE_S):
        async with websockets.connect(url.replace("http", "ws") + path, max_size=None, open_timeout=10) as ws:
            seen = asyncio.Event()

            async def reader() -> None:
                try:
                    async for m in ws:
                        if isinstance(m, bytes):
                            out.fragments += 1
                        else:
                            out.events.append(json.loads(m))
                            if until and out.events[-1].get("type") in (until, "error"):
                                seen.set()
                except websockets.ConnectionClosed:
                    pass
                seen.set()

            task = asyncio.create_task(reader()) if read else None
            try:
                for step in steps:
                    if step == "UNTIL":
                        await seen.wait()
                    elif isinstance(step, float):
                        await asyncio.sleep(step)
                    elif isinstance(step, tuple):
                        if step[0] == "abort":  # a TCP reset
                            ws.transport.abort()
                            return out
                        if step[0] == "fin":  # TCP closed without a close frame
                            ws.transport.close()
                            return out
                        await ws.close(step[1], step[2] if len(step) > 2 else "")
                    else:
                        await ws.send(step)
            except websockets.ConnectionClosed:
                pass  # the server closed while we were still sending: its code is below
            if task is not None:
                await task
            else:
                await ws.wait_closed()
            out.code, out.reason = ws.close_code, ws.close_reason or ""
    return out


def run(url: str, path: str, steps: list[Step], **kw) -> Outcome:
    try:
        return asyncio.run(session(url, path, steps, **kw))
    except TimeoutError as exc:
        raise AssertionError(
            f"{path}: the server did not end the session within {DEADLINE_S} s: {steps!r:.300}"
        ) from exc


def expect(server: Server, path: str, name: str, steps: list[Step], codes: set[int] | int, words: str = "", **kw):
    """The case ends in one of `codes` (with `words` in the reason); the server stays ready."""
    out = run(server.url, path, steps, **kw)
    codes = {codes} if isinstance(codes, int) else codes
    assert out.code in codes and words in out.reason, f"{path} {name}: {out.code} {out.reason!r}, expected {codes}"
    _healthy(server, f"{path} {name}")
    return out


def abrupt(server: Server, path: str, name: str, steps: list[Step], **kw) -> Outcome:
    out = run(server.url, path, steps, **kw)
    _healthy(server, f"{path} {name}")
    return out


# normal sessions: the server still works -------------------------------------------------------------------------
def tone(seconds: float, rate: int = 16000, hz: float = 180.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2").tobytes()


def frames(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def normal_live(server: Server) -> None:
    """The hello is answered with `listening`; the microphone's silence is taken; a client close ends it."""
    out = run(server.url, LIVE, [HELLO[LIVE], *frames(bytes(16000), 640), 0.3, ("close", 1000)])
    assert out.kinds()[:1] == ["listening"], out.events


def normal_animate(server: Server) -> None:
    """ready, fMP4 (the voice muxed in), done, and a normal close."""
    out = run(server.url, ANIMATE, [HELLO[ANIMATE], *frames(tone(0.3), 640), '{"type": "end"}'])
    assert out.code == 1000 and out.kinds()[0] == "ready" and out.kinds()[-1] == "done" and out.fragments >= 2, out


# what goes in --------------------------------------------------------------------------------------------------
def random_text(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # random unicode, control characters and astral planes included
        ranges = [(0, 0x20), (0x20, 0x7F), (0xA0, 0xD7FF), (0x10000, 0x10FFFF)]
        return "".join(chr(rng.randrange(*rng.choice(ranges))) for _ in range(rng.randrange(0, 200)))
    if kind == 1:  # JSON-ish fragments
        parts = ['{', '}', '[', ']', '"type"', ':', ',', '"end"', '"interrupt"', '"playback"', 'null', '1e999', '-0',
                 'NaN', 'true', '"position_s"', '"\\ud800"', "'"]  # fmt: skip
        return "".join(rng.choice(parts) for _ in range(rng.randrange(1, 30)))
    if kind == 2:  # JSON of the wrong type
        return json.dumps(rng.choice([None, 1, -1.5, "end", [], [{"type": "end"}], True, {"type": []}, {}]))
    if kind == 3:  # unknown message kinds and wrong field types
        return json.dumps({"type": rng.choice(["dance", "", "END", "Interrupt", None, 7, {"x": 1}, "end\x00"]),
                           "position_s": rng.choice(["x", None, [], 1e308, -1])})  # fmt: skip
    if kind == 4:  # the protocol's own messages, at random points
        return json.dumps({"type": rng.choice(["end", "interrupt", "playback"]), "position_s": rng.random() * 5})
    return rng.choice(["", " ", "\x00", "[" * 5000, "{" * 3000])


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 2, 3, rng.randrange(4, 64), rng.randrange(64, 2048) * 2, rng.randrange(64, 2048) * 2 + 1])
    return rng.randbytes(n)


def random_frames(rng: random.Random, n: int) -> list[Step]:
    return [random_text(rng) if rng.random() < 0.35 else random_bytes(rng) for _ in range(n)]


DEEP = "[" * 100_000  # json.loads gives up (RecursionError) long before the end
MALFORMED = ["not json", "{", '{"sample_rate": ', "", "\x00", "nul", "[]", '"str"', "1e999", "null", "NaN",
             '{"a": 1} trailing', '{"sample_rate": 16000, "sample_rate": "x"}', DEEP,
             "{" + '"a":{' * 30000]  # fmt: skip
LONG_KEY = {"ключ-" * 60: 1}  # an unknown field whose name, echoed in a reason, is over 123 bytes of UTF-8
WRONG_TYPES = {
    LIVE: [{"sample_rate": "fast"}, {"sample_rate": [16000]}, {"sample_rate": None}, {"sample_rate": 44100},
           {"size": 128.0}, {"size": "128"}, {"size": 2**70}, {"fps": "fast"}, {"fps": 1e999}, {"seed": -1},
           {"end_silence_ms": 1e9}, {"language": 5}, {"persona": {"id": "x"}}, {"session": "zz"},
           {"type": "interrupt"}, {"type": "end"}, LONG_KEY],
    ANIMATE: [{"sample_rate": 7}, {"sample_rate": "x"}, {"sample_rate": 16000.5}, {"sample_rate": -16000},
              {"size": 127}, {"size": 130.0}, {"size": 2**70}, {"fps": 5}, {"fps": "nan"}, {"avatar": "../etc"},
              {"avatar": ""}, {"language": "?"}, {"seed": "a"}, {"type": "interrupt"}, {"type": "end"}, LONG_KEY],
}  # fmt: skip
BAD_CONTROL = ["{", "[1, 2]", DEEP, '{"type": null}', '{"type": "dance"}', '{"type": ["end"]}', '"end"', "\x00",
               "bye"]  # fmt: skip


# the cases ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_bad_hellos_are_refused(srv, path):
    expect(srv, path, "binary before the hello", [b"\x00\x01" * 200], 1007)
    for text in MALFORMED:
        expect(srv, path, f"malformed hello {text[:30]!r}", [text], 1007)
    for hello in WRONG_TYPES[path]:
        expect(srv, path, f"hello {str(hello)[:40]}", [json.dumps(hello)], 1007)
    if path == ANIMATE:
        expect(srv, path, "an unknown language", [json.dumps({"language": "xx"})], 1008)
        expect(srv, path, "an unknown avatar", [json.dumps({"avatar": "nobody"})], 1008)
    else:
        expect(srv, path, "an unknown persona", [json.dumps({"persona": "nobody"})], 1008)


@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_bad_frames_after_the_hello_close_with_their_code(srv, path):
    hello = HELLO[path]
    expect(srv, path, "odd-length PCM", [hello, b"\x00" * 640, b"\x00" * 3], 1007, "even")
    expect(srv, path, "a single byte", [hello, b"\x01"], 1007, "even")
    over = LIVE_MAX + 2 if path == LIVE else 2 * 16000 * 2 + 2
    expect(srv, path, "a frame over 2 s", [hello, bytes(over)], 1009, "at most")
    expect(srv, path, "a frame over the server's limit", [hello, bytes(WS_MAX + 2)], 1009)
    expect(srv, path, "a text frame over the server's limit", [hello, "x" * (WS_MAX + 2)], 1009)
    expect(srv, path, "a hello over the server's limit", ["{" + " " * (WS_MAX + 2) + "}"], 1009)
    if path == ANIMATE:  # the limit follows the declared rate
        expect(srv, path, "over 2 s at 8 kHz", [json.dumps({"sample_rate": 8000}), bytes(2 * 8000 * 2 + 2)], 1009)
    for text in BAD_CONTROL:
        expect(srv, path, f"control {text[:30]!r}", [hello, tone(0.1), text], 1003)
    if path == LIVE:  # the live socket takes only `playback`: `end` and `interrupt` are unknown there
        for kind in ("end", "interrupt"):
            expect(srv, path, kind, [hello, json.dumps({"type": kind})], 1003, "playback")
        for bad in ('{"type": "playback"}', '{"type": "playback", "position_s": "soon"}'):
            expect(srv, path, bad, [hello, bad], 1003)


def test_animate_messages_in_the_wrong_order(srv):
    end, interrupt = '{"type": "end"}', '{"type": "interrupt"}'
    hello = HELLO[ANIMATE]
    out = expect(srv, ANIMATE, "interrupt before any audio", [hello, interrupt, interrupt, end], 1000)
    assert out.kinds()[0] == "ready" and out.kinds()[-1] == "done", out.events
    out = expect(srv, ANIMATE, "end twice, then audio and junk after the end",
                 [hello, tone(0.2), end, end, tone(0.2), b"\x00", "junk", interrupt], 1000)  # fmt: skip
    assert out.kinds()[-1] == "done", out.events
    out = expect(srv, ANIMATE, "end at once", [hello, end], 1000)
    assert out.kinds() == ["ready", "done"], out.events
    out = expect(srv, ANIMATE, "empty frames", [hello, b"", b"", tone(0.1), b"", end], 1000)
    assert out.kinds()[-1] == "done", out.events
    normal_animate(srv)


def test_live_messages_in_the_wrong_order(srv):
    hello = HELLO[LIVE]
    expect(srv, LIVE, "playback before the hello", ['{"type": "playback", "position_s": 1}'], 1007)
    expect(srv, LIVE, "two hellos", [hello, hello], 1003)
    expect(srv, LIVE, "playback with nothing playing, then a bad message",
           [hello, '{"type": "playback", "position_s": 1.5}', '{"type": "playback", "position_s": -1}', b"", "bye"],
           1003)  # fmt: skip
    normal_live(srv)


@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_random_frames(srv, path):
    rng = random.Random(f"{SEED}-{path}")
    for i in range(12):
        steps = random_frames(rng, rng.randrange(1, 25))
        if rng.random() < 0.7:
            steps.insert(0, HELLO[path])
        out = run(srv.url, path, [*steps, "bye"])  # "bye" ends a session that took every message
        assert out.code in CODES[path], f"seed {SEED} {path} case {i}: {out.code} {out.reason!r} after {steps!r:.500}"
        _healthy(srv, f"{path} random case {i}")
    (normal_live if path == LIVE else normal_animate)(srv)


@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_floods_of_tiny_frames(srv, path):
    hello, rng = HELLO[path], random.Random(f"{SEED}-flood-{path}")
    tiny = [rng.randbytes(2) for _ in range(4000)]  # one sample each
    if path == LIVE:
        playback = [json.dumps({"type": "playback", "position_s": i / 100}) for i in range(1000)]
        t = time.monotonic()
        expect(srv, path, "4000 one-sample frames and 1000 playbacks", [hello, *tiny, *playback, "bye"], 1003)
    else:
        controls = ['{"type": "interrupt"}'] * 1000
        t = time.monotonic()
        out = expect(srv, path, "4000 one-sample frames and 1000 interrupts", [hello, *tiny, *controls,
                                                                               '{"type": "end"}'], 1000)  # fmt: skip
        assert out.kinds()[-1] == "done", out.kinds()[-5:]
    print(f"{path}: a flood of 5000 frames answered in {time.monotonic() - t:.1f} s")
    expect(srv, path, "a flood of empty frames", [hello, *[b""] * 3000, "bye"], 1003)
    (normal_live if path == LIVE else normal_animate)(srv)


@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_abrupt_closes(srv, path):
    hello, voice = HELLO[path], frames(tone(0.6), 640)
    abrupt(srv, path, "reset before the hello", [("abort",)])
    abrupt(srv, path, "FIN before the hello", [("fin",)])
    abrupt(srv, path, "reset after the hello", [hello, ("abort",)])
    abrupt(srv, path, "FIN after the hello", [hello, 0.2, ("fin",)])
    abrupt(srv, path, "reset mid-stream", [hello, *voice, ("abort",)])
    abrupt(srv, path, "FIN mid-stream", [hello, *voice[:10], ("fin",)])
    abrupt(srv, path, "reset mid-frame", [hello, *voice[:5], ("abort",)])
    abrupt(srv, path, "a client that never reads, then resets", [hello, *voice, 1.0, ("abort",)], read=False)
    for code in (1000, 1001, 3000, 4999):
        abrupt(srv, path, f"close {code} mid-stream", [hello, *voice[:8], ("close", code, "bye ✓")])
    if path == ANIMATE:
        end = '{"type": "end"}'
        abrupt(srv, path, "reset right after end", [hello, *voice, end, ("abort",)])
        abrupt(srv, path, "close right after end", [hello, *voice, end, ("close", 1000)])
        abrupt(srv, path, "reset after interrupt", [hello, *voice, '{"type": "interrupt"}', ("abort",)])
    time.sleep(0.5)  # the server notices the last drop
    (normal_live if path == LIVE else normal_animate)(srv)


@pytest.fixture(scope="module")
def speech(server) -> bytes:
    """A spoken question as 16 kHz PCM (the server's own voice, from its OpenAI-compatible speech route)."""
    from models.media.audio import resample

    body = {"input": "What is the weather like today?", "response_format": "pcm"}
    r = httpx.post(server.url + "/v1/audio/speech", json=body, timeout=60)
    assert r.status_code == 200, r.text[:300]
    audio = np.frombuffer(r.content[: len(r.content) // 2 * 2], "<i2").astype(np.float32) / 32768
    return (resample(audio, 24000, 16000) * 32767).astype("<i2").tobytes()


def test_live_turns_cut_by_abrupt_closes_and_bad_messages(srv, speech):
    """A question is heard and its turn starts (without a Whisper in the model store the turn fails with an
    `error` event, which the session survives); the socket is reset, closed or refused while the turn runs."""
    hello, said = HELLO[LIVE], frames(bytes(9600) + speech + bytes(32000), 3200)  # faster than real time
    out = expect(srv, LIVE, "a turn, then a bad message", [hello, *said, "UNTIL", 0.5, "bye"], 1003,
                 until="speech_ended")  # fmt: skip
    assert "speech_started" in out.kinds() and "speech_ended" in out.kinds(), out.events
    print(f"a turn cut by a bad message: {out.kinds()}")
    for name, end in (("reset", ("abort",)), ("FIN", ("fin",)), ("close", ("close", 1000)), ("bad message", "bye")):
        for at in ("speech_started", "speech_ended"):
            abrupt(srv, LIVE, f"{name} at {at}", [hello, *said, "UNTIL", end], until=at)
    out = expect(srv, LIVE, "talking over a turn, twice", [hello, *said, *said, *said, 0.5, "bye"], 1003)
    assert out.kinds().count("speech_started") >= 2, out.events
    # a playhead that is not a number is refused (a NaN cut the sentence heard at a barge-in: ValueError)
    for position in ("NaN", "Infinity", "-Infinity"):
        bad = f'{{"type": "playback", "position_s": {position}}}'
        # no close of our own after it: the server's framing would answer a client's close frame at once, even
        # while the route is still busy with the audio before the bad message (a 1000 under CI load)
        expect(srv, LIVE, f"playback {position}", [hello, *said[:3], bad], 1003, "playback")
    time.sleep(0.5)
    normal_live(srv)


# raw TCP: broken WebSocket framing --------------------------------------------------------------------------------
def _frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head, n = bytes([(0x80 if fin else 0) | rsv | opcode]), len(payload)
    if n < 126:
        size = bytes([n])
    elif n < 65536:
        size = bytes([126]) + n.to_bytes(2, "big")
    else:
        size = bytes([127]) + n.to_bytes(8, "big")
    if not mask:
        return head + size + payload
    key = b"\x01\x02\x03\x04"
    return head + bytes([size[0] | 0x80]) + size[1:] + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def raw(url: str, path: str, data: list[bytes], eof: bool = False) -> int | None:
    """Upgrade a raw TCP connection, send `data` (then EOF, if `eof`), and read the server's frames until its
    close frame (its code) or the end of the connection (None)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(UPGRADE.format(path=path).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        for d in data:
            writer.write(d)
        await writer.drain()
        if eof:
            writer.write_eof()
        while True:  # the server's frames are not masked
            b0, b1 = await reader.readexactly(2)
            n = b1 & 0x7F
            if n >= 126:
                n = int.from_bytes(await reader.readexactly(2 if n == 126 else 8), "big")
            payload = await reader.readexactly(n)
            if b0 & 0x0F == 0x8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None
    finally:
        writer.close()


async def raw_http(url: str, request: bytes) -> bytes:
    """Send `request` as it is and read until the server closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


@pytest.mark.parametrize("path", [LIVE, ANIMATE])
def test_broken_framing_on_a_raw_socket(srv, path):
    """Frames no client library would send: the server's framing refuses them (1002 a protocol error, 1007 bad
    UTF-8, 1009 too big) or the route does, and a connection cut inside a frame is let go."""
    rng = random.Random(f"{SEED}-raw-{path}")
    hello = _frame(0x1, HELLO[path].encode())
    close = _frame(0x8, (1000).to_bytes(2, "big"))
    cases = {  # name: (what is sent, the close codes taken: None, the connection ends without one)
        "random bytes": ([rng.randbytes(rng.randrange(1, 4000))], {1002, 1007, 1009, None}),
        "random bytes after the hello": ([hello, rng.randbytes(3000)], {1002, 1003, 1007, 1009, None}),
        "an unmasked frame": ([_frame(0x1, HELLO[path].encode(), mask=False)], {1002}),
        "invalid UTF-8 in the hello": ([_frame(0x1, b'{"sample_rate": "\xff\xfe"}')], {1007}),
        "invalid UTF-8 after the hello": ([hello, _frame(0x1, b"\xc3\x28")], {1007}),
        "a reserved opcode": ([hello, _frame(0x3, b"abc")], {1002}),
        "reserved bits set": ([hello, _frame(0x2, b"\x00\x00", rsv=0x40)], {1002}),
        "a continuation with nothing to continue": ([hello, _frame(0x0, b"\x00\x00")], {1002}),
        "a fragmented control frame": ([hello, _frame(0x9, b"ping", fin=False)], {1002}),
        "a control frame over 125 bytes": ([hello, _frame(0x9, b"p" * 200)], {1002}),
        "a bad close code": ([hello, _frame(0x8, (999).to_bytes(2, "big"))], {1002}),
        "a close frame with invalid UTF-8": ([hello, _frame(0x8, (1000).to_bytes(2, "big") + b"\xff")], {1007}),
        "a one-byte close frame": ([hello, _frame(0x8, b"\x03")], {1002}),
        "a length of 2**63": ([hello, b"\x82\xff" + (2**63 - 1).to_bytes(8, "big") + bytes(4)], {1002, 1009}),
        "a fragmented message over the limit": ([hello, _frame(0x2, bytes(40000), fin=False),
                                                 _frame(0x0, bytes(40000))], {1009}),
        "a message in 2000 fragments": ([hello, _frame(0x2, b"\x00\x00", fin=False),
                                         *[_frame(0x0, b"\x00\x00", fin=False)] * 1998, _frame(0x0, b"\x00\x00"),
                                         _frame(0x1, b"bye")], {1003}),
        "1000 pings, then a close": ([hello, *[_frame(0x9, b"p")] * 1000, close], {1000, 1005}),
        "a close frame, then more frames": ([hello, close, _frame(0x2, b"\x00\x00"), _frame(0x1, b"bye")],
                                            {1000, 1005, None}),  # None: a server that has closed may reset
        #                                     the connection on the frames after the close (seen once under CI load)
    }  # fmt: skip
    for name, (data, codes) in cases.items():
        try:
            got = asyncio.run(asyncio.wait_for(raw(srv.url, path, data), DEADLINE_S))
        except TimeoutError as exc:
            raise AssertionError(f"{path} {name}: the server kept the connection open") from exc
        assert got in codes, f"{path} {name}: {got}, expected {codes}"
        _healthy(srv, f"{path} {name}")
    cut = {"a frame cut short": [hello, _frame(0x2, bytes(4000))[:100]],
           "a fragmented message never finished": [hello, _frame(0x2, b"\x00\x00", fin=False)],
           "a half-sent hello": [_frame(0x1, HELLO[path].encode())[:5]]}  # fmt: skip
    for name, data in cut.items():  # then EOF: the connection ends
        asyncio.run(asyncio.wait_for(raw(srv.url, path, data, eof=True), DEADLINE_S))
        _healthy(srv, f"{path} {name}")
    for name, request in {"garbage instead of HTTP": rng.randbytes(500) + b"\r\n\r\n",
                          "an upgrade without a key": f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                                      "Connection: Upgrade\r\n\r\n".encode()}.items():  # fmt: skip
        answer = asyncio.run(asyncio.wait_for(raw_http(srv.url, request), DEADLINE_S))
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), f"{path} {name}: {answer[:200]!r}"
        _healthy(srv, f"{path} {name}")
    (normal_live if path == LIVE else normal_animate)(srv)


# soak -------------------------------------------------------------------------------------------------------------
def _handlers(server: Server) -> float:
    """Socket handlers still running (BentoML's request_in_progress gauge of the two socket routes): a handler
    that hangs, or whose task outlives its socket, stays counted."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    lines = [ln for ln in text.splitlines() if "request_in_progress{" in ln and not ln.startswith("#")]
    assert lines, "no request_in_progress gauge in /metrics"
    return sum(
        float(ln.rsplit(" ", 1)[1]) for ln in lines if f'endpoint="{LIVE}"' in ln or f'endpoint="{ANIMATE}"' in ln
    )


def _worker(server: Server) -> dict:
    """The API worker's resident memory (MB), open files, TCP connections and threads, and the socket handlers
    in progress."""
    psutil = pytest.importorskip("psutil")
    pids = server.worker_pids("avatar-pipeline")
    assert len(pids) == 1, pids
    p = psutil.Process(pids[0])
    conns = [c for c in p.net_connections("tcp") if c.laddr and c.laddr.port == server.port and c.raddr]
    return {"rss_mb": round(p.memory_info().rss / 1e6, 1), "fds": p.num_fds(), "sockets": len(conns),
            "threads": p.num_threads(), "handlers": _handlers(server)}  # fmt: skip


def _soak_round(server: Server, rng: random.Random) -> None:
    end = '{"type": "end"}'
    for path in (LIVE, ANIMATE):
        hello, voice = HELLO[path], frames(tone(0.3), 640)
        expect(server, path, "random", [hello, *random_frames(rng, 8), "bye"], CODES[path])
        expect(server, path, "odd PCM", [hello, b"\x00" * 641], 1007)
        expect(server, path, "over 2 s", [hello, bytes(2 * 16000 * 2 + 2)], 1009)
        expect(server, path, "deep JSON", [DEEP], 1007)
        expect(server, path, "long key", [json.dumps(LONG_KEY)], 1007)
        expect(server, path, "flood", [hello, *[rng.randbytes(2) for _ in range(500)], "bye"], 1003)
        abrupt(server, path, "reset mid-stream", [hello, *voice, ("abort",)])
        abrupt(server, path, "FIN mid-stream", [hello, *voice[:5], ("fin",)])
        abrupt(server, path, "close mid-stream", [hello, *voice[:5], ("close", 1000)])
        abrupt(server, path, "never reads", [hello, *voice, 0.3, ("abort",)], read=False)
    expect(server, ANIMATE, "end twice", [HELLO[ANIMATE], tone(0.1), end, end, b"\x00"], 1000)
    normal_live(server)
    normal_animate(server)


def test_soak_memory_and_sockets_stay_flat(srv):
    """Rounds of a mix of the cases. The first two warm up (pools, caches, allocator arenas); over the last
    three the worker's memory grows by under 4 MB and its open files stay level (its threads stay within the
    executor's bound), and after every round no socket is left open and no socket handler is still running. The
    worker's memory creeps while it warms up (a few kB a connection on any route, plain HTTP included; not Python
    objects: tracemalloc sees none) and levels off after a few thousand connections: FUZZ_ROUNDS=30 grew 0.1 MB
    over its last 10 rounds."""

    async def one_open() -> float:  # the gauge counts an open socket's handler
        async with websockets.connect(srv.url.replace("http", "ws") + LIVE) as ws:
            await ws.send(HELLO[LIVE])
            await ws.recv()
            return await asyncio.to_thread(_handlers, srv)

    assert asyncio.run(one_open()) >= 1
    rng = random.Random(f"{SEED}-soak")
    marks = []
    t = time.monotonic()
    for _ in range(ROUNDS):
        _soak_round(srv, rng)
        time.sleep(0.5)  # the server finishes with the last sockets
        marks.append(_worker(srv))
    print(f"soak: {ROUNDS} rounds in {time.monotonic() - t:.1f} s; the API worker after each: {marks}")
    last = marks[-4:]
    growth = last[-1]["rss_mb"] - last[0]["rss_mb"]
    assert growth < 4, f"the API worker grew {growth:.1f} MB over the last three rounds: {marks}"
    assert max(m["fds"] for m in last) - min(m["fds"] for m in last) <= 2, marks
    assert all(m["sockets"] == 0 for m in marks), f"sockets left open: {marks}"
    assert all(m["handlers"] == 0 for m in marks), f"socket handlers still running after a round: {marks}"
    # threads: the event loop's default executor grows on demand (at most min(32, CPUs + 4) threads), no further
    assert max(m["threads"] for m in marks) <= marks[0]["threads"] + min(32, (os.cpu_count() or 1) + 4), marks
