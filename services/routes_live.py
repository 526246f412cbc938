"""Hands-free conversation over one WebSocket, `GET /api/v1/live`: the adapter between the socket and
models/live's session (turn-taking and barge-in). Each turn reuses the existing stages: Whisper transcription
(TTSService), the persona's LLM reply cut into sentences (services/conversation.py), and the served stream
(services/streaming.py), whose fMP4 fragments go out as binary messages.

Close codes: 1007 a bad hello (not JSON, unknown fields, a sample rate other than 16000) or PCM of an odd length;
1009 a frame over 2 s of audio; 1003 a text message that is not one we know; 1011 no LLM configured or a service
failed; 4408 nothing received for IDLE_S. Each comes with a reason that names the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import math
from collections.abc import AsyncIterator

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from models.errors import AvatarError, InvalidInput
from models.live.session import LiveSession, Turn
from models.live.turns import EndpointConfig, Utterance
from models.live.vad import RATE, VadState
from services.auth import accepted_subprotocol
from services.backends import Service
from services.schemas import GenerateRequest, LiveHello
from services.streaming import stream

router = APIRouter()
log = logging.getLogger(__name__)
HELLO_S, IDLE_S = 10.0, 60.0  # seconds to send the hello; seconds of nothing at all before the socket is closed
MAX_FRAME = 2 * RATE * 2  # bytes: 2 s of 16-bit PCM


class Close(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, clipped(reason)


def clipped(reason: str) -> str:
    """A close reason that fits its control frame: at most 123 bytes of UTF-8 (it may echo a client's text)."""
    return reason.encode()[:123].decode(errors="ignore")


async def send(ws: WebSocket, item: dict | bytes) -> None:
    """One message to the client. A socket the server's own framing has just closed (a protocol error from the
    client: uvicorn sends the close frame itself and, until the connection is lost, answers a send with a
    RuntimeError rather than a disconnect) is a client that left, as it is once the connection is lost."""
    try:
        await (ws.send_bytes(item) if isinstance(item, bytes) else ws.send_json(item))
    except RuntimeError as exc:
        raise WebSocketDisconnect(1006) from exc


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    """Close with `code`, unless the client has already gone (then there is nobody to tell)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.close(code, clipped(reason))


@router.websocket("/api/v1/live")
async def live(ws: WebSocket, svc: Service) -> None:
    """See the module docstring; the messages are in the docs ("Hands-free")."""
    await ws.accept(subprotocol=accepted_subprotocol(ws.scope.get("headers") or []))
    session = None
    try:
        hello = await _hello(ws)
        session, greeting = _session(ws, svc, hello)
        await session.send(greeting)
        await _listen(ws, session)
    except Close as exc:
        await close(ws, exc.code, exc.reason)
    except WebSocketDisconnect:
        pass
    except AvatarError as exc:  # a service failed under the session (the VAD's): the client hears why
        await close(ws, 1011 if exc.status >= 500 else 1008, exc.message)
    finally:
        if session is not None:
            await session.close()  # a dropped socket cancels its turn


async def _hello(ws: WebSocket) -> LiveHello:
    try:
        text = await asyncio.wait_for(ws.receive_text(), HELLO_S)
        hello = LiveHello.model_validate(json.loads(text))
    except TimeoutError as exc:
        raise Close(4408, f"no hello within {HELLO_S:.0f} s: send a JSON object first") from exc
    except (KeyError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
        raise Close(
            1007, "the first message must be a JSON object (persona, session, language, sample_rate...)"
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Close(1007, f"hello: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    if hello.sample_rate != RATE:
        raise Close(1007, f"sample_rate {hello.sample_rate} is not taken: send 16-bit mono PCM at {RATE} Hz")
    return hello


def _session(ws: WebSocket, svc, hello: LiveHello) -> tuple[LiveSession, dict]:
    c = svc.conversations
    try:
        c.require_llm()
        session_id, conv, who = c.session(hello.session, hello.persona)
    except AvatarError as exc:
        raise Close(1011 if exc.status >= 500 else 1008, exc.message) from exc

    async def vad(audio: np.ndarray, state: VadState):
        result = await svc._vad(audio, state.as_dict())
        return np.asarray(result["probs"], np.float32), VadState.from_dict(result["state"])

    def interrupted(turn: Turn, spoken: str) -> None:
        if turn.heard:
            conv.heard_only(turn.heard, spoken)

    def respond(utterance: Utterance, turn: Turn) -> AsyncIterator[dict | bytes]:
        return _answer(svc, hello, conv, who, utterance, turn)

    config = EndpointConfig(end_silence_s=hello.end_silence_ms / 1000)
    listening = {"type": "listening", "session": session_id, "sample_rate": RATE, "persona": who.id}
    return LiveSession(vad, respond, functools.partial(send, ws), interrupted, config), listening


async def _listen(ws: WebSocket, session: LiveSession) -> None:
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), IDLE_S)
        except TimeoutError as exc:
            raise Close(4408, f"nothing received for {IDLE_S:.0f} s") from exc
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            data = message["bytes"]
            if len(data) > MAX_FRAME:
                raise Close(1009, f"a frame of {len(data)} bytes: at most {MAX_FRAME} (2 s of 16 kHz 16-bit PCM)")
            if len(data) % 2:
                raise Close(1007, "16-bit PCM frames have an even number of bytes")
            await session.feed(data)
        else:
            _control(session, message.get("text") or "")


def _control(session: LiveSession, text: str) -> None:
    try:
        msg = json.loads(text)
        if msg.get("type") == "playback" and math.isfinite(position := float(msg["position_s"])):
            return session.playback(position)  # a NaN playhead would cut the sentence heard at a barge-in
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, RecursionError):
        pass
    raise Close(1003, 'text messages are JSON {"type": "playback", "position_s": N}; audio goes in binary frames')


async def _answer(svc, hello: LiveHello, conv, who, utterance: Utterance, turn: Turn) -> AsyncIterator[dict | bytes]:
    """One turn: transcript, the reply's words and sentences, its video as fragments, then done."""
    heard = await svc._transcribe(_wav(utterance.audio), hello.language, None if hello.language else who.languages)
    if not any(ch.isalnum() for ch in heard["text"]):
        raise InvalidInput("no speech was recognised in the utterance", field="audio")
    turn.heard = heard["text"]
    yield {"type": "transcript", "text": heard["text"], "language": heard["language"], "asr_ms": heard["asr_ms"]}
    language = who.reply_language(heard["language"])
    events: list[dict] = []
    said: list[str] = []

    def on_delta(delta: str) -> None:
        said.append(delta)
        events.append({"type": "delta", "text": delta})

    pieces, _ = svc.conversations.reply(conv, heard["text"], language, on_delta=on_delta)
    body = GenerateRequest(text="conversation", language=language, avatar=who.avatar, voice=who.voice,
                           size=hello.size, fps=hello.fps, seed=hello.seed)  # fmt: skip
    info: dict = {}
    async for item in _video(svc, body, pieces, events, info):
        yield item
    yield {"type": "done", "reply": "".join(said).strip(), "language": language, "video_s": info.get("video_s")}


async def _video(svc, body: GenerateRequest, pieces, events: list[dict], info: dict) -> AsyncIterator[dict | bytes]:
    """The reply's fragments, each preceded by the events that arrived before it (words, sentences)."""

    def on_piece(text: str, at_s: float) -> None:
        events.append({"type": "sentence", "text": text, "at_s": round(at_s, 3)})

    frames = stream(svc, body, pieces, on_piece, info)
    try:
        async for data in frames:
            for event in events:
                yield event
            events.clear()
            yield data
    finally:
        await frames.aclose()  # cancelled (barge-in, a dropped socket): the stream and the LLM stop here
    for event in events:
        yield event


def _wav(audio: np.ndarray) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, audio, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()
