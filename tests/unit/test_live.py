"""Hands-free turns without a server (models/live): Silero VAD, the end-of-turn state machine, and a session's
turns and barge-in with a fake answer."""

import asyncio

import numpy as np
import pytest

from models.live.session import LiveSession, Turn
from models.live.turns import Discarded, EndpointConfig, Endpointer, SpeechStarted, Utterance
from models.live.vad import RATE, WINDOW, SileroVad, VadState
from models.media.audio import resample
from models.tts import synthesize

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def vad():
    return SileroVad()


@pytest.fixture(scope="module")
def spoken(pipeline):
    """Two Piper sentences at 16 kHz."""
    a = synthesize(pipeline.tts, "Could you tell me what the weather is like today?")
    b = synthesize(pipeline.tts, "And what about tomorrow morning?")
    return resample(a.audio, a.sample_rate, RATE), resample(b.audio, b.sample_rate, RATE)


def silence(seconds):
    return np.zeros(int(seconds * RATE), np.float32)


def probs_of(vad, audio):
    probs, state = vad.probabilities(audio, VadState())
    return probs, state


def test_vad_hears_speech_not_silence_or_noise(vad, spoken):
    probs, state = probs_of(vad, np.concatenate([silence(1.0), spoken[0], silence(1.0)]))
    n_sil = int(1.0 * RATE / WINDOW)
    assert probs[: n_sil - 2].max() < 0.2 and probs[-n_sil + 10 :].max() < 0.2
    assert np.mean(probs[n_sil:-n_sil] > 0.5) > 0.6  # most of the sentence
    noise = np.random.default_rng(0).normal(0, 0.02, RATE * 2).astype(np.float32)
    assert np.mean(vad.probabilities(noise, VadState())[0] > 0.5) < 0.1
    # the same audio in odd-sized pieces gives the same probabilities: the state carries over
    audio, pieces, state = np.concatenate([silence(0.3), spoken[1]]), [], VadState()
    for chunk in np.array_split(audio, 37):
        p, state = vad.probabilities(chunk, state)
        pieces.append(p)
    assert np.allclose(np.concatenate(pieces), probs_of(vad, audio)[0][: sum(map(len, pieces))], atol=1e-5)
    assert VadState.from_dict(state.as_dict()).lstm.shape == (2, 1, 128)  # it crosses a process boundary


def _windows(*runs, level=0.1):
    """Probabilities from (seconds, probability) runs, with audio of a constant `level` (RMS)."""
    probs = np.concatenate([np.full(int(round(s * RATE / WINDOW)), p, np.float32) for s, p in runs])
    return np.full(len(probs) * WINDOW, level, np.float32), probs


def test_a_pause_shorter_than_the_endpoint_stays_inside_the_turn():
    ep = Endpointer(EndpointConfig(end_silence_s=0.6))
    events = ep.push(*_windows((0.5, 0.0), (1.0, 0.9), (0.3, 0.1), (0.5, 0.9), (1.0, 0.05)))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, Utterance]
    started, turn = events
    assert started.at_s == pytest.approx(0.5, abs=0.04)
    assert turn.start_s == pytest.approx(0.5, abs=0.04) and turn.end_s == pytest.approx(2.3, abs=0.04)
    assert len(turn.audio) / RATE == pytest.approx(1.8 + 0.3, abs=0.05)  # with the preroll


def test_a_blip_is_discarded_and_a_monologue_is_cut():
    ep = Endpointer(EndpointConfig(min_utterance_s=0.25))
    events = ep.push(*_windows((0.5, 0.0), (0.16, 0.9), (1.0, 0.0)))
    assert [type(e) for e in events] == [SpeechStarted, Discarded]  # it started (a barge-in), then was nothing
    ep = Endpointer(EndpointConfig(max_utterance_s=2.0))
    events = ep.push(*_windows((5.0, 0.9), (1.0, 0.0)))
    turns = [e for e in events if isinstance(e, Utterance)]
    assert [round(t.end_s - t.start_s, 1) for t in turns] == [2.0, 2.0, 1.0]
    # what Silero calls speech but is too faint to be the person (the avatar's voice left by echo cancellation)
    assert Endpointer().push(*_windows((0.5, 0.0), (1.0, 0.9), (1.0, 0.0), level=0.003)) == []
    with pytest.raises(ValueError, match="windows"):
        ep.push(np.zeros(100, np.float32), np.zeros(1, np.float32))


def test_two_spoken_questions_make_two_turns(vad, spoken):
    audio = np.concatenate([silence(0.5), spoken[0], silence(1.2), spoken[1], silence(1.0)])
    ep, events, state = Endpointer(), [], VadState()
    for chunk in np.array_split(audio, len(audio) // 480):  # 30 ms frames, as a browser sends them
        samples = np.concatenate([state.pending, chunk])
        probs, state = vad.probabilities(chunk, state)
        events += ep.push(samples[: len(probs) * WINDOW], probs)
    turns = [e for e in events if isinstance(e, Utterance)]
    assert len(turns) == 2 and sum(isinstance(e, SpeechStarted) for e in events) == 2
    first_end = 0.5 + len(spoken[0]) / RATE
    assert turns[0].start_s == pytest.approx(0.5, abs=0.25) and turns[0].end_s == pytest.approx(first_end, abs=0.3)
    assert turns[1].start_s == pytest.approx(first_end + 1.2, abs=0.25)


def test_spoken_text_follows_the_playhead():
    turn = Turn(1, sentences=[("Hello there.", 0.0), ("The weather is fine and warm today.", 1.0)], video_s=3.0)
    assert turn.spoken(0.0) == ""
    assert turn.spoken(1.0) == "Hello there."
    assert turn.spoken(2.0) == "Hello there. The weather is fine…"  # half the second sentence: 4 of its 7 words
    assert turn.spoken(9.0) == "Hello there. The weather is fine and warm today."
    assert Turn(2).spoken(1.5) == ""  # talked over before its first sentence (was a ValueError: a strict zip)


class FakeVad:
    """Loudness as speech probability (fast, exact for the synthetic audio of these tests)."""

    async def __call__(self, audio, state):
        samples = np.concatenate([state.pending, audio])
        n = len(samples) // WINDOW
        rms = np.sqrt(np.mean(samples[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1)) if n else np.zeros(0)
        return (rms > 0.05).astype(np.float32), VadState(state.lstm, state.context, samples[n * WINDOW :])


def pcm(seconds, loud):
    return (np.full(int(seconds * RATE), 0.3 if loud else 0.0) * 32767).astype("<i2").tobytes()


async def answer(utterance, turn, log):
    """A fake answer: two sentences, a fragment every 50 ms, 'done' with the video's length."""
    log.append(("start", turn.id))
    try:
        yield {"type": "transcript", "text": f"heard {len(utterance.audio) / RATE:.1f} s"}
        yield {"type": "sentence", "text": "One two three four.", "at_s": 0.0}
        for _ in range(4):
            await asyncio.sleep(0.05)
            yield b"fragment"
        yield {"type": "sentence", "text": "Five six seven eight.", "at_s": 2.0}
        for _ in range(4):
            await asyncio.sleep(0.05)
            yield b"fragment"
        yield {"type": "done", "video_s": 4.0}
    finally:
        log.append(("end", turn.id))


def run_session(script, position=None):
    """Feed `script` [(seconds, loud)] in 30 ms frames at real speed; returns what was sent and the log."""
    sent, log, heard = [], [], []

    async def send(item):
        sent.append(item)

    async def main():
        session = LiveSession(FakeVad(), lambda u, t: answer(u, t, log), send, lambda t, s: heard.append((t.id, s)))
        for seconds, loud in script:
            data = pcm(seconds, loud)
            for i in range(0, len(data), 960):
                await session.feed(data[i : i + 960])
                if position is not None:
                    session.playback(position)
                await asyncio.sleep(0.03)
        await asyncio.sleep(0.6)
        await session.close()

    asyncio.run(main())
    return sent, log, heard


def test_talking_over_the_answer_interrupts_it():
    sent, log, heard = run_session([(0.3, False), (0.6, True), (0.75, False), (0.5, True), (0.8, False)])
    events = [e for e in sent if isinstance(e, dict)]
    kinds = [e["type"] for e in events]
    assert kinds.count("speech_started") == 2 and kinds.count("speech_ended") == 2
    assert "interrupted" in kinds
    cut = events[kinds.index("interrupted")]
    assert cut["turn"] == 1 and log[:2] == [("start", 1), ("end", 1)]  # the first answer's generator was closed
    assert heard == [(1, cut["spoken"])] and "Five" not in cut["spoken"]  # only what had played
    second = [e for e in events if e.get("turn") == 2]
    assert [e["type"] for e in second][-1] == "done"  # the second question got its whole answer
    assert sent[-1] == {"type": "done", "video_s": 4.0, "turn": 2}


def test_speech_after_the_answer_played_is_a_new_turn_not_a_barge_in():
    # the client reports its playhead past the end of the 4 s video: the answer is over
    sent, log, heard = run_session([(0.6, True), (1.5, False), (0.5, True), (0.8, False)], position=5.0)
    kinds = [e["type"] for e in sent if isinstance(e, dict)]
    assert "interrupted" not in kinds and heard == [] and kinds.count("done") == 2


async def failing(utterance, turn):
    """An answer that fails before its first item (no LLM)."""
    raise RuntimeError("no LLM")
    yield  # an async generator


def test_a_failed_answer_is_an_error_event_and_the_session_listens_on():
    sent = []

    async def send(item):
        sent.append(item)

    async def main():
        session = LiveSession(FakeVad(), failing, send)
        for seconds, loud in [(0.6, True), (0.9, False), (0.6, True), (0.9, False)]:
            await session.feed(pcm(seconds, loud))
            await asyncio.sleep(0.05)
        await session.close()

    asyncio.run(main())
    errors = [e for e in sent if e["type"] == "error"]
    assert [e["turn"] for e in errors] == [1, 2] and errors[0]["status"] == 500
    with pytest.raises(ValueError, match="even"):
        asyncio.run(LiveSession(FakeVad(), failing, send).feed(b"\x00"))


def test_a_failed_answer_to_a_client_that_left_ends_its_turn_quietly():
    """The error event cannot go out either (the socket is gone): the turn's task ends without an exception of
    its own, so nothing is left for the event loop to log as never retrieved."""
    calls = []

    async def gone(item):
        calls.append(item)
        if item["type"] == "error":
            raise ConnectionResetError("the client left")

    async def main():
        session = LiveSession(FakeVad(), failing, gone)
        for seconds, loud in [(0.6, True), (0.9, False)]:
            await session.feed(pcm(seconds, loud))
        await asyncio.sleep(0.1)
        task = session.turn.task
        assert task.done() and task.exception() is None
        await session.close()

    asyncio.run(main())
    assert [c["type"] for c in calls][-1] == "error"


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."), OSError("gone")],
)
def test_a_socket_the_server_already_closed_is_a_client_that_left(failure):
    """uvicorn closes a socket itself on a client's protocol error and, until the connection is lost, answers a
    send with a RuntimeError (afterwards with ClientDisconnected, an OSError): both are a disconnect to the
    routes, and closing such a socket is a no-op, not an unhandled exception."""
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from services.routes_live import close, send

    async def receive():
        return {"type": "websocket.connect"}

    async def transport(message):
        if message["type"] != "websocket.accept":
            raise failure

    async def main():
        for item in ({"type": "listening"}, b"\x00\x01"):
            ws = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, transport)
            await ws.accept()
            with pytest.raises(WebSocketDisconnect) as cut:
                await send(ws, item)
            assert cut.value.code == 1006
        ws = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, transport)
        await ws.accept()
        await close(ws, 1003, "x" * 300)  # nobody to tell: no exception

    asyncio.run(main())
