"""Hands-free turns in this process, from a recording: `avatar talk --wav FILE` (demos, tests). The recording is
played into a `LiveSession` in real time, as a microphone would (barge-in is decided against the wall clock of
the answer's playback); each answer is written as a fragmented MP4 and every event printed.

The stages are the library's own: Silero VAD (models/live/vad.py), Whisper (models/asr), the persona's
conversation and the LLM (models/chat), and `Pipeline.stream` for the video.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import InvalidInput
from models.live.session import LiveSession, Turn
from models.live.turns import Utterance
from models.live.vad import RATE, SileroVad, VadState
from models.stream import StreamStats

FRAME = 480  # samples: 30 ms, as a browser sends them


@dataclass
class Stages:
    """What answers a turn: the pipeline (video), a transcriber (models/asr), a `Conversation` and its LLM client."""

    pipeline: object
    transcriber: object
    conversation: object
    client: object
    language: str | None = None  # the language spoken; None: detected


async def talk(audio: np.ndarray, out: Path, stages: Stages, on_event: Callable[[dict], None],
               tail_s: float = 2.0) -> LiveSession:  # fmt: skip
    """Play `audio` (float32, 16 kHz) into a session, then `tail_s` of silence; waits for the last answer."""
    vad = SileroVad()

    async def probabilities(chunk: np.ndarray, state: VadState):
        return await asyncio.to_thread(vad.probabilities, chunk, state)

    async def send(item: dict | bytes) -> None:
        if isinstance(item, dict):
            on_event(item)

    def respond(utterance: Utterance, turn: Turn) -> AsyncIterator[dict | bytes]:
        return _answer(utterance, turn, out, stages)

    def interrupted(turn: Turn, spoken: str) -> None:
        if turn.heard:
            stages.conversation.heard_only(turn.heard, spoken)

    session = LiveSession(probabilities, respond, send, interrupted)
    pcm = (np.clip(np.concatenate([audio, np.zeros(int(tail_s * RATE), np.float32)]), -1, 1) * 32767).astype("<i2")
    loop, start = asyncio.get_running_loop(), asyncio.get_running_loop().time()
    for k, i in enumerate(range(0, len(pcm), FRAME)):
        await session.feed(pcm[i : i + FRAME].tobytes())
        await asyncio.sleep(max(0.0, start + (k + 1) * FRAME / RATE - loop.time()))
    if session.turn is not None and session.turn.task is not None:
        await asyncio.gather(session.turn.task, return_exceptions=True)
    await session.close()
    return session


async def _answer(utterance: Utterance, turn: Turn, out: Path, stages: Stages) -> AsyncIterator[dict | bytes]:
    heard = await asyncio.to_thread(stages.transcriber.transcribe, utterance.audio, RATE, stages.language)
    if not any(ch.isalnum() for ch in heard.text):
        raise InvalidInput("no speech was recognised in the utterance", field="audio")
    turn.heard = heard.text
    yield {"type": "transcript", "text": heard.text, "language": heard.language}
    reply = await asyncio.to_thread(
        lambda: "".join(stages.conversation.reply(stages.client, heard.text, heard.language))
    )
    yield {"type": "sentence", "text": reply.strip(), "at_s": 0.0}
    path = out / f"turn-{turn.id}.mp4"
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".mp4.part")
    stats = StreamStats()
    chunks = iter(stages.pipeline.stream(reply, language=heard.language, stats=stats))
    try:
        with os.fdopen(fd, "wb") as f:
            while (data := await asyncio.to_thread(next, chunks, None)) is not None:
                f.write(data)
                yield data
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # an interrupted answer leaves no file
    yield {"type": "done", "reply": reply.strip(), "video": str(path), "video_s": round(stats.audio_duration_s, 3)}
