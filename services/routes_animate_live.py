"""A face for a voice that streams in, over one WebSocket, `GET /api/v1/animate/live`: the adapter between the
socket and models/live/lipsync.py. The client (a voice agent, its own TTS) streams 16-bit mono PCM at the rate
it declares; the server answers in real time with one continuous fMP4 (binary messages: the init segment, then
fragments) with the client's audio muxed in, idle between utterances. Pieces are timed by TTSService.align
(live: phone recognition in English, formants elsewhere) and rendered by AvatarService, as a stream's chunks.

Client -> server: a JSON hello first ({"sample_rate": 24000, "language": "en", "avatar", "size", "fps", "seed"}),
then binary PCM frames (at most 2 s each), and JSON {"type": "interrupt"} (drop what is buffered: the mouth
shuts at once) or {"type": "end"} (play out what is buffered, then close). Server -> client: {"type": "ready"},
{"type": "speaking"|"idle"|"interrupted", "at_s"}, binary fMP4, and {"type": "done"} before closing.

Close codes: 1007 a bad hello or PCM of an odd length; 1008 an unknown avatar or language; 1009 a frame over 2 s
or audio too far ahead of the video; 1003 a text message we do not know; 1011 a service failed; 4408 nothing
received for audio_in.live_idle_timeout_s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from models.align import checked_language
from models.avatar.controls import MotionConfig
from models.errors import AvatarError
from models.live.lipsync import LipsyncConfig, LipsyncSession
from models.media.fragments import EncodedChunk
from models.stream import LiveVideo
from models.tts.base import Phoneme
from services.audio_in import align
from services.auth import accepted_subprotocol
from services.backends import Service
from services.routes_live import HELLO_S, Close, close, send
from services.schemas import ID_PATTERN, LANGUAGE_PATTERN, ChunkRequest
from services.streaming import gated

router = APIRouter()
RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
WINDOW_S = 10.0  # history the face plan keeps


class LipsyncHello(BaseModel):
    """The first message on `/api/v1/animate/live` (JSON text)."""

    model_config = {"extra": "forbid"}

    sample_rate: int = Field(24000, description=f"of the PCM frames: one of {RATES}")
    language: str = Field("en", pattern=LANGUAGE_PATTERN, max_length=12, description="the language spoken")
    avatar: str = Field("default", pattern=ID_PATTERN)
    size: int | None = Field(None, ge=128, le=1024, multiple_of=2, strict=True)
    fps: float | None = Field(None, ge=10, le=60)
    seed: int = Field(0, ge=0, le=2**32 - 1)


@router.websocket("/api/v1/animate/live")
async def animate_live(ws: WebSocket, svc: Service) -> None:
    """See the module docstring; the messages are in the docs ("Audio in")."""
    await ws.accept(subprotocol=accepted_subprotocol(ws.scope.get("headers") or []))
    runner = None
    try:
        session, hello = await _start(ws, svc)
        await send(ws, {"type": "ready", "sample_rate": hello.sample_rate, "fps": session.live.fps,
                            "size": session.live.size, "lookahead_s": session.config.lookahead_s})  # fmt: skip
        runner = asyncio.create_task(session.run())
        await _receive(ws, svc, session, runner)
        await runner
        await close(ws, 1000)
    except Close as exc:
        await close(ws, exc.code, exc.reason)
    except WebSocketDisconnect:
        pass
    except AvatarError as exc:  # the avatar or a service refused (an unknown avatar: 404)
        await close(ws, 1008 if exc.status < 500 else 1011, exc.message)
    finally:
        if runner is not None:  # cancelled if it runs; awaited either way, so a failure of its own is collected
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner


async def _start(ws: WebSocket, svc) -> tuple[LipsyncSession, LipsyncHello]:
    hello = await _hello(ws)
    try:
        language = checked_language(None, hello.language)
    except AvatarError as exc:
        raise Close(1008, exc.message) from exc
    size, fps = hello.size or svc.settings.avatar.size, hello.fps or svc.settings.avatar.fps
    live = LiveVideo(size, fps, svc.settings.video, MotionConfig(seed=hello.seed), window_s=WINDOW_S)
    a = svc.settings.audio_in
    config = LipsyncConfig(lookahead_s=a.live_lookahead_s, lead_s=a.live_lead_s)

    async def timed(audio, rate):
        found = await align(svc, audio, rate, None, language, live=True)
        return [Phoneme(*p) for p in found["phonemes"]], found["source"]

    async def render(job):
        req = ChunkRequest(avatar=hello.avatar, size=size, fps=fps, start=job.start, poses=job.controls.poses())
        result = await gated(svc.gate, "avatar", time.perf_counter(), lambda: svc._render_chunk(req))
        return EncodedChunk.unpack(result.chunk)

    return LipsyncSession(live, hello.sample_rate, timed, render, functools.partial(send, ws), config), hello


async def _hello(ws: WebSocket) -> LipsyncHello:
    try:
        hello = LipsyncHello.model_validate(json.loads(await asyncio.wait_for(ws.receive_text(), HELLO_S)))
    except TimeoutError as exc:
        raise Close(4408, f"no hello within {HELLO_S:.0f} s: send a JSON object first") from exc
    except (KeyError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
        raise Close(1007, "the first message must be a JSON object (sample_rate, language, avatar...)") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Close(1007, f"hello: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    if hello.sample_rate not in RATES:
        raise Close(1007, f"sample_rate {hello.sample_rate} is not taken: one of {', '.join(map(str, RATES))}")
    return hello


async def _receive(ws: WebSocket, svc, session: LipsyncSession, runner: asyncio.Task) -> None:
    """Messages until `end` (or the session fails: its error closes the socket)."""
    idle_s, max_frame = svc.settings.audio_in.live_idle_timeout_s, 2 * session.rate * 2
    while not session.ending:
        receive = asyncio.ensure_future(ws.receive())
        done, _ = await asyncio.wait({receive, runner}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            receive.cancel()
            runner.result()  # raises the session's failure
            return
        if not done:
            receive.cancel()
            raise Close(4408, f"nothing received for {idle_s:.0f} s")
        _message(session, receive.result(), max_frame)


def _message(session: LipsyncSession, message: dict, max_frame: int) -> None:
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if (data := message.get("bytes")) is not None:
        if len(data) > max_frame:
            raise Close(1009, f"a frame of {len(data)} bytes: at most {max_frame} (2 s of 16-bit PCM)")
        if len(data) % 2:
            raise Close(1007, "16-bit PCM frames have an even number of bytes")
        try:
            return session.feed(data)
        except BufferError as exc:
            raise Close(1009, str(exc)) from exc
    kind = _kind(message.get("text") or "")
    if kind == "interrupt":
        return session.interrupt()
    if kind == "end":
        return session.end()
    raise Close(1003, 'text messages are JSON {"type": "interrupt"} or {"type": "end"}; audio goes in binary frames')


def _kind(text: str) -> str | None:
    with contextlib.suppress(json.JSONDecodeError, AttributeError, RecursionError):
        return json.loads(text).get("type")
    return None
