"""Conversation routes: personas, speech recognition, the LLM's reply as events, and a whole turn (speech or text in,
the persona's answer out as a live fMP4) with its events. A turn puts two stages in front of the served stream
(services/streaming.py) and nothing inside it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from urllib.parse import quote

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from models.errors import AvatarError, InvalidInput
from services.app import EVENT_RESPONSES, NO_STORE, UPLOAD, streamed
from services.backends import Service, call, read_upload
from services.schemas import (
    ID_PATTERN,
    LANGUAGE_PATTERN,
    MAX_CHARS,
    SESSION_PATTERN,
    TEXT_PATTERN,
    ChatRequest,
    GenerateRequest,
    error_responses,
)
from services.streaming import stream

router = APIRouter()


@router.get("/api/v1/personas", tags=["conversation"])
async def personas(svc: Service) -> dict:
    """Who the avatar can be in a conversation, and whether the LLM and speech recognition are set up."""
    c = svc.conversations
    personas = [p.model_dump(exclude={"system_prompt"}) for p in c.personas.values()]
    asr = (await call(svc.tts.to_async.info)).get("asr")
    ready = {"llm": c.client is not None, "asr": isinstance(asr, dict)}
    return {"personas": personas, "ready": ready, "hints": {"llm": c.client_error, "asr": asr}}


@router.post("/api/v1/transcribe", tags=["conversation"], responses=error_responses(400, 413, 502, 503))
async def transcribe(
    svc: Service,
    audio: UploadFile = File(**UPLOAD, description="wav, flac, ogg, mp3, or what browsers record (webm, mp4)"),
    language: str | None = Form(None, pattern=LANGUAGE_PATTERN, max_length=12),
) -> dict:
    """Speech to text with Whisper (its weights imported by scripts/import_models.py whisper): the text, the
    language heard (our codes: en, es, zh-cn...) and timed segments."""
    return await svc._transcribe(await read_upload(audio, "audio"), language)


@router.post("/api/v1/chat", tags=["conversation"], response_class=StreamingResponse, responses=EVENT_RESPONSES)
async def chat(svc: Service, body: ChatRequest) -> StreamingResponse:
    """The persona's reply as server-sent events while the LLM writes it: `session`, `delta` (tokens),
    `sentence` (each speakable piece), `done` (the whole reply) or `error`. The first sentence is made before
    answering, so a missing or failing LLM is a JSON error."""
    c = svc.conversations
    session, conversation, persona = c.session(body.session, body.persona)
    turn = c.turns.new(session)
    turn.emit("session", session=session, persona=persona.id)
    reply: list[str] = []
    language = persona.reply_language(body.language)
    pieces, stats = c.reply(
        conversation, body.text, language, on_delta=lambda d: reply.append(d) or turn.emit("delta", text=d)
    )
    first = await anext(pieces)

    async def rest() -> None:
        try:
            turn.emit("sentence", text=first)
            async for piece in pieces:
                turn.emit("sentence", text=piece)
            turn.emit("done", reply="".join(reply).strip(), language=language, llm=asdict(stats))
        except Exception as exc:  # noqa: BLE001  (the client hears it as an event)
            turn.emit("error", **_error_body(exc))

    task = asyncio.create_task(rest())
    return StreamingResponse(_sse(turn.follow(), task), media_type="text/event-stream", headers=NO_STORE)


@router.post("/api/v1/conversation", tags=["conversation"], response_class=StreamingResponse,
             responses=streamed("video/mp4") | error_responses(413, 504))  # fmt: skip
async def conversation(
    svc: Service,
    audio: UploadFile | None = File(None, description="what the user said (wav, webm...); or send `text`"),
    text: str | None = Form(None, min_length=1, max_length=MAX_CHARS, pattern=TEXT_PATTERN),
    persona: str | None = Form(None, pattern=ID_PATTERN),
    session: str | None = Form(None, pattern=SESSION_PATTERN),
    language: str | None = Form(None, pattern=LANGUAGE_PATTERN, max_length=12),
    size: int | None = Form(None, ge=128, le=1024, multiple_of=2),
    fps: float | None = Form(None, ge=10, le=60),
    seed: int = Form(0, ge=0, le=2**32 - 1),
) -> StreamingResponse:
    """One turn: the user's speech (or text) in, the persona's answer out as a live fMP4, its first fragment
    after the reply's first sentence. Headers: `x-session` (send it back to continue), `x-turn` (follow
    GET /api/v1/conversation/{turn}/events for the words), `x-transcript` (percent-encoded), `x-language`,
    `x-timing` (ms: asr, llm_first_token, first_sentence, first_fragment)."""
    t0, c = time.perf_counter(), svc.conversations
    if (audio is None) == (text is None):
        raise InvalidInput("send either `audio` or `text`", allowed=["audio", "text"], field="audio")
    session, conv, who = c.session(session, persona)
    heard = await _hear(svc, audio, text, language, who.languages)
    timing = {"asr": heard["asr_ms"]}
    reply_language = who.reply_language(heard["language"])
    turn = c.turns.new(session)
    turn.emit("transcription", text=heard["text"], language=heard["language"], asr_ms=heard["asr_ms"])
    said: list[str] = []
    pieces, stats = c.reply(
        conv, heard["text"], reply_language, on_delta=lambda d: said.append(d) or turn.emit("delta", text=d)
    )
    body = GenerateRequest(text="conversation", language=reply_language, avatar=who.avatar, voice=who.voice,
                           size=size, fps=fps, seed=seed)  # fmt: skip
    first, frames = await _first_fragment(svc, body, _timed(pieces, timing, t0), turn)
    timing |= {"llm_first_token": stats.first_token_ms, "first_fragment": (time.perf_counter() - t0) * 1000}

    def done() -> dict:  # the turn's last event, once the video is out
        return {"reply": "".join(said).strip(), "language": reply_language, "timing": timing, "llm": asdict(stats)}

    headers = _turn_headers(session, turn.id, reply_language, heard["text"], timing)
    return StreamingResponse(_turn_video(first, frames, turn, done), media_type="video/mp4", headers=headers)


@router.get("/api/v1/conversation/{turn}/events", tags=["conversation"], response_class=StreamingResponse,
            responses=EVENT_RESPONSES)  # fmt: skip
async def conversation_events(svc: Service, turn: str = PathParam(pattern=SESSION_PATTERN)) -> StreamingResponse:
    """A turn's events as server-sent events, from its start (none are missed by connecting late):
    `transcription`, `delta`, `sentence` (with `at_s`: where it starts in the video), `done` or `error`."""
    events = svc.conversations.turns.get(turn)
    return StreamingResponse(_sse(events.follow()), media_type="text/event-stream", headers=NO_STORE)


async def _hear(svc, audio: UploadFile | None, text: str | None, language: str | None, candidates) -> dict:
    """What the user said: the typed text, or the transcript of their speech (detected among `candidates`)."""
    if audio is None:
        return {"text": text, "language": language, "asr_ms": 0.0}
    data = await read_upload(audio, "audio")
    heard = await svc._transcribe(data, language, None if language else candidates)
    if not any(ch.isalnum() for ch in heard["text"]):
        raise InvalidInput("no speech was recognised in the audio", field="audio")
    return heard


async def _timed(pieces: AsyncIterator[str], timing: dict, t0: float) -> AsyncIterator[str]:
    async for piece in pieces:  # the LLM has written a whole sentence
        timing.setdefault("first_sentence", (time.perf_counter() - t0) * 1000)
        yield piece


async def _first_fragment(svc, body: GenerateRequest, pieces: AsyncIterator[str], turn):
    """The reply's stream and its first fragment (made before answering, so a failure is still a JSON error);
    each sentence is announced on the turn's events with where it starts in the video."""

    def on_piece(piece: str, at_s: float) -> None:
        turn.emit("sentence", text=piece, at_s=round(at_s, 3))

    frames = stream(svc, body, pieces, on_piece)
    try:
        return await anext(frames), frames
    except Exception as exc:
        turn.emit("error", **_error_body(exc))
        raise


async def _turn_video(first: bytes, frames: AsyncIterator[bytes], turn, done: Callable[[], dict]):
    try:
        yield first
        async for data in frames:
            yield data
    except BaseException as exc:
        turn.emit("error", **_error_body(exc))
        raise
    turn.emit("done", **done())


async def _sse(events: AsyncIterator[dict], task: asyncio.Task | None = None) -> AsyncIterator[bytes]:
    """Events as server-sent events (`data: {json}`); a producer task is cancelled when the client leaves."""
    try:
        async for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
    finally:
        if task is not None:
            task.cancel()


def _error_body(exc: BaseException) -> dict:
    if isinstance(exc, AvatarError):
        return {"status": exc.status} | exc.to_dict()
    return {"status": 500, "error": "stream_failed", "message": f"the answer failed: {type(exc).__name__}"}


def _turn_headers(session: str, turn: str, language: str, transcript: str, timing: dict) -> dict[str, str]:
    return NO_STORE | {"x-session": session, "x-turn": turn, "x-language": language,
                       "x-transcript": quote(transcript), "x-timing": _timing(timing)}  # fmt: skip


def _timing(timing: dict) -> str:
    return ", ".join(f"{k}={v:.0f}" for k, v in timing.items() if v is not None)
