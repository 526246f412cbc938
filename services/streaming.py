"""The served stream: models/stream.py's LiveVideo across services. Speech comes piece by piece from TTSService
(ahead, in a task), each piece is planned here, its chunks are rendered and encoded by AvatarService (batched with
other streams' chunks) and muxed here into fMP4. Which stream may ask for more work is models/pacing.py's Pacer.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import StreamingResponse

from models.errors import InvalidInput
from models.media.fragments import EncodedChunk
from models.pacing import DeadlineGate, Pacer, as_async, next_item, produce
from models.settings import load_settings
from services.schemas import ChunkRequest, GenerateRequest, SynthesisRequest, unpack_audio

SERVING = load_settings().serving


Producer = Callable[[asyncio.Queue, Pacer], Awaitable[None]]  # fills the queue with SpeechChunks, then None


async def stream(
    svc, body: GenerateRequest, pieces: AsyncIterator[str] | None = None, on_piece: Callable | None = None,
    info: dict | None = None, speech_from: Producer | None = None,
) -> AsyncIterator[bytes]:  # fmt: skip
    """One stream's bytes. `pieces` (default: `body.text` cut into sentences) may arrive while the stream plays,
    e.g. from an LLM; `on_piece(text, at_s)` hears where each piece starts in the video; `info["video_s"]` is
    the video's length once the last bytes are out. `speech_from` replaces the TTS: speech from elsewhere (audio
    in, services/audio_in.py), put into the queue piece by piece."""
    live = _live_video(svc, body)
    speech: asyncio.Queue = asyncio.Queue(4)
    pacer = Pacer(svc.pacers, SERVING.stream_ahead_s)
    if speech_from is None:
        pieces = pieces or as_async(pieces_of(body.text, svc.settings.tts.max_chars))
        synth = SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed)
        # A stream that starts alone takes every core for its first piece; beside others it would slow them
        # (measured)
        speech_from = functools.partial(speak_pieces, svc, pieces, synth, urgent_first=not svc.pacers)
    producer = asyncio.create_task(speech_from(speech, pacer))
    window: deque[asyncio.Task] = deque()
    svc.pacers.add(pacer)
    try:
        while (piece := await next_item(speech)) is not None:
            if on_piece:
                on_piece(piece.text, live.duration)
            async for data in _piece_video(svc, body.avatar, live, piece, pacer, window):
                yield data
        yield live.finish()
        if info is not None:
            info["video_s"] = live.duration
    except BaseException:
        live.abort()
        raise
    finally:
        svc.pacers.discard(pacer)
        producer.cancel()
        for task in window:
            task.cancel()


def _live_video(svc, body: GenerateRequest):
    from models.avatar.controls import MotionConfig
    from models.stream import CHUNK_FRAMES, LiveVideo

    size, fps = body.size or svc.settings.avatar.size, body.fps or svc.settings.avatar.fps
    # Starting beside other streams, a first fragment of ~0.7 s gives the player slack while the CPU is shared.
    chunks = CHUNK_FRAMES if not svc.pacers else (18, 25)
    return LiveVideo(size, fps, svc.settings.video, MotionConfig(seed=body.seed), chunk_frames=chunks)


async def _piece_video(svc, avatar: str, live, piece, pacer: Pacer, window: deque) -> AsyncIterator[bytes]:
    """A piece's chunks, rendered and encoded by the avatar service: after the first fragment two are in flight,
    so the next one renders while this one travels and is muxed. The piece's last chunks go out before the stream
    waits for more speech."""
    for job in live.add_speech(piece):
        req = ChunkRequest(avatar=avatar, size=live.size, fps=live.fps, start=job.start, poses=job.controls.poses())
        await pacer.wait()
        deadline = pacer.deadline(job.start / live.fps)
        window.append(asyncio.create_task(gated(svc.gate, "avatar", deadline, lambda r=req: svc._render_chunk(r))))
        if len(window) >= (2 if live.muxer.n_frames else 1):
            yield pacer.sent(live.add_video(EncodedChunk.unpack((await window.popleft()).chunk)), live)
    while window:
        yield pacer.sent(live.add_video(EncodedChunk.unpack((await window.popleft()).chunk)), live)


async def speak_pieces(
    svc, pieces: AsyncIterator[str], req: SynthesisRequest, out: asyncio.Queue, pacer: Pacer | None = None,
    *, urgent_first: bool = False,
) -> None:  # fmt: skip
    """Synthesise the pieces in order into `out` (a SpeechChunk each, then None; or the error). `urgent_first`:
    nothing of the video can be made before its first piece (SynthesisOptions.urgent); the rest as `req` says.
    With a pacer, the calls wait in the TTS gate by when the player needs them."""
    from models.tts.base import Phoneme, SpeechChunk

    said_s: float | None = None  # seconds of speech so far (None: none yet)

    async def speak(text: str) -> SpeechChunk:
        nonlocal said_s
        call = req.model_copy(update={"text": text, "urgent": req.urgent or (urgent_first and said_s is None)})
        if pacer:  # needed when the player reaches the end of the speech so far
            s = await gated(svc.gate, "tts", pacer.deadline(said_s or 0.0), lambda: svc._speak(call))
        else:
            s = await svc._speak(call)
        phonemes = [Phoneme(*p) for p in s.phonemes] if s.phonemes is not None else None
        chunk = SpeechChunk(unpack_audio(s.audio), s.sample_rate, text, phonemes)
        said_s = (said_s or 0.0) + chunk.duration
        return chunk

    await produce(pieces, speak, out, pacer.wait if pacer else None)


async def gated(gate: DeadlineGate, service: str, deadline: float, call: Callable[[], Awaitable]):
    async with gate.slot(deadline, service):
        return await call()


async def stream_response(svc, body: GenerateRequest, speech_from: Producer | None = None) -> StreamingResponse:
    """Bad input is a 4xx JSON before the first byte (the first fragment is made before answering); a failure
    later aborts the connection, so a cut stream never looks complete."""
    frames = stream(svc, body, speech_from=speech_from)
    first = await frames.__anext__()

    async def body_iter() -> AsyncIterator[bytes]:
        yield first
        async for data in frames:
            yield data

    headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
    return StreamingResponse(body_iter(), media_type="video/mp4", headers=headers)


def pieces_of(text: str, max_chars: int) -> list[str]:
    """The pieces to speak; a text with nothing to say (no letter or digit: "...", "¤") is a 400."""
    from models.text import normalize_text, stream_pieces

    pieces = stream_pieces(normalize_text(text, max_chars))
    if not pieces:
        raise InvalidInput("text has nothing to say", allowed="a text with at least one letter or digit", field="text")
    return pieces
