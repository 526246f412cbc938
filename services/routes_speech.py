"""Speech routes: `/api/v1/tts` (WAV) and OpenAI's `/v1/audio/speech`, both sent sentence by sentence as they are
synthesised."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from models.pacing import as_async, next_item
from services.app import streamed
from services.backends import Service
from services.openai_errors import OpenAIError
from services.schemas import SpeechRequest, SynthesisRequest, TTSRequest, error_responses
from services.streaming import pieces_of, speak_pieces

router = APIRouter()
SPEECH_RESPONSES = {
    200: {"content": {"audio/*": {}, "text/event-stream": {}}, "description": "audio as it is made (chunked), "
          "or server-sent events with stream_format: sse"},
} | error_responses(400, 404, 502, 503, model=OpenAIError)  # fmt: skip


@router.post("/api/v1/tts", tags=["speech"], response_class=StreamingResponse, responses=streamed("audio/wav"))
async def tts_wav(svc: Service, body: TTSRequest) -> StreamingResponse:
    """Speech only, as a WAV file sent sentence by sentence (the header declares an unknown length)."""
    req = SynthesisRequest(text=body.text, language=body.language, voice=body.voice, speed=body.speed, urgent=True)
    return await speech_response(svc, req, "wav")


@router.post("/v1/audio/speech", tags=["speech"], response_class=StreamingResponse, responses=SPEECH_RESPONSES)
async def openai_speech(svc: Service, body: SpeechRequest) -> StreamingResponse:
    """OpenAI-compatible speech, streamed sentence by sentence as OpenAI's is. `model` and `instructions` are
    accepted and ignored (the configured engine speaks); OpenAI's voice names map to our voices."""
    voice = svc.settings.tts.voice_for_openai(body.voice)
    req = SynthesisRequest(text=body.input, voice=voice, speed=body.speed, urgent=True)
    return await speech_response(svc, req, body.response_format, sse=body.stream_format == "sse")


async def speech_response(svc, req: SynthesisRequest, fmt: str, sse: bool = False) -> StreamingResponse:
    """Speech sent as each sentence is synthesised; the first one is made before answering, so bad input is a
    4xx JSON, and a failure later cuts the connection."""
    from models.media.audio_stream import open_audio_stream

    open_audio_stream(fmt, 24000).close()  # an unknown format is refused before any synthesis
    pieces = pieces_of(req.text, svc.settings.tts.max_chars)
    t0 = time.perf_counter()
    speech: asyncio.Queue = asyncio.Queue(4)
    producer = asyncio.create_task(speak_pieces(svc, as_async(pieces), req, speech))
    try:
        first = await next_item(speech)
    except BaseException:
        producer.cancel()
        raise
    first_ms = (time.perf_counter() - t0) * 1000
    encoder = open_audio_stream(fmt, first.sample_rate)

    async def audio() -> AsyncIterator[bytes]:
        try:
            yield encoder.add(first.audio)
            while (piece := await next_item(speech)) is not None:
                yield encoder.add(piece.audio)
            yield encoder.close()
        finally:
            producer.cancel()

    headers = {"cache-control": "no-store", "x-tts-ms": f"{first_ms:.0f}"}  # time to the first sentence
    if sse:
        return StreamingResponse(_sse_events(audio()), media_type="text/event-stream", headers=headers)
    return StreamingResponse(audio(), media_type=encoder.content_type, headers=headers)


async def _sse_events(audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """OpenAI's speech events: `speech.audio.delta` with base64 audio as it is made, then `speech.audio.done`."""
    async for data in audio:
        if data:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            yield f"data: {json.dumps(event)}\n\n".encode()
    yield b'data: {"type": "speech.audio.done"}\n\n'
