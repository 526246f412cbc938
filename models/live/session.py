"""One hands-free conversation: microphone audio in, turns out, and barge-in. Transport-agnostic asyncio: the
caller feeds PCM (`feed`) and the client's playhead (`playback`), and gets everything to send through `send`
(JSON-able dicts for events, bytes for video). What a turn says is the caller's `respond`; this module only
decides when a turn starts, and stops it when the person talks over the avatar.

Barge-in: speech that starts while the avatar's answer is still being made or still playing cancels the turn
(its task is cancelled between two fragments, so the client holds whole fragments only), tells the client to
stop playback, and hands what the avatar had actually said (the sentences that had started playing, the last one
cut in proportion) to `on_interrupted`, so the conversation remembers that and not the whole planned reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from models.live.turns import Discarded, EndpointConfig, Endpointer, SpeechStarted, Utterance
from models.live.vad import WINDOW, VadState

Vad = Callable[[np.ndarray, VadState], Awaitable[tuple[np.ndarray, VadState]]]
Send = Callable[[dict | bytes], Awaitable[None]]
CHARS_PER_S = 14.0  # speaking rate used to cut the last sentence when its end is not known yet


@dataclass
class Turn:
    """One answer: its sentences with where each starts in its video (`at_s`), and when its video started
    playing (the first fragment sent) and how long it is, once known."""

    id: int
    sentences: list[tuple[str, float]] = field(default_factory=list)
    first_video_at: float | None = None  # monotonic time the first fragment was sent
    video_s: float | None = None  # its length, when the answer is complete
    position_s: float | None = None  # the client's last reported playhead
    task: asyncio.Task | None = None
    heard: str | None = None  # what the user said (its transcript), once known

    def playhead(self, now: float) -> float:
        """Where the client's playback is: its last report, else the time since the first fragment left."""
        if self.position_s is not None:
            return self.position_s
        return 0.0 if self.first_video_at is None else now - self.first_video_at

    def playing(self, now: float) -> bool:
        if self.task is not None and not self.task.done():
            return True
        return self.video_s is not None and self.playhead(now) < self.video_s

    def spoken(self, position_s: float) -> str:
        """The text heard by `position_s`: whole sentences that had ended, and the one playing cut by time."""
        said = []
        for (text, at), (_, nxt) in itertools.pairwise([*self.sentences, ("", None)]):  # none yet: nothing said
            if position_s <= at:
                break
            end = (
                nxt if nxt is not None else (self.video_s if self.video_s is not None else at + len(text) / CHARS_PER_S)
            )
            if position_s >= end:
                said.append(text)
            else:
                words = text.split()
                keep = round(len(words) * (position_s - at) / max(end - at, 1e-6))
                said.append(" ".join(words[:keep]) + "…" if keep else "")
        return " ".join(s for s in said if s).strip()


Respond = Callable[[Utterance, Turn], AsyncIterator[dict | bytes]]
Interrupted = Callable[[Turn, str], None]


class LiveSession:
    def __init__(self, vad: Vad, respond: Respond, send: Send, on_interrupted: Interrupted | None = None,
                 config: EndpointConfig | None = None, min_vad_samples: int = 2 * WINDOW):  # fmt: skip
        self.vad, self.respond, self._send, self.on_interrupted = vad, respond, send, on_interrupted
        self.endpointer = Endpointer(config)
        self.state = VadState()
        self.min_vad_samples = min_vad_samples
        self.buffer = np.zeros(0, np.float32)
        self.turn: Turn | None = None
        self.ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def send(self, item: dict | bytes) -> None:
        async with self._lock:  # one message at a time on the transport
            await self._send(item)

    async def feed(self, pcm16: bytes) -> None:
        """16-bit little-endian mono PCM at 16 kHz, any length."""
        if len(pcm16) % 2:
            raise ValueError("16-bit PCM has an even number of bytes")
        self.buffer = np.concatenate([self.buffer, np.frombuffer(pcm16, "<i2").astype(np.float32) / 32768])
        if len(self.buffer) < self.min_vad_samples:
            return
        audio, self.buffer = self.buffer, np.zeros(0, np.float32)
        samples = np.concatenate([self.state.pending, audio])  # the VAD scores whole windows of these
        probs, self.state = await self.vad(audio, self.state)
        for event in self.endpointer.push(samples[: len(probs) * WINDOW], probs):
            await self._on(event)

    def playback(self, position_s: float) -> None:
        """The client's playhead in the current answer's video (seconds)."""
        if self.turn is not None:
            self.turn.position_s = float(position_s)

    async def _on(self, event) -> None:
        if isinstance(event, SpeechStarted):
            await self.send({"type": "speech_started", "at_s": round(event.at_s, 3)})
            if self.turn is not None and self.turn.playing(time.monotonic()):
                await self.interrupt()
        elif isinstance(event, Discarded):
            await self.send({"type": "speech_discarded", "duration_s": round(event.end_s - event.start_s, 3)})
        elif isinstance(event, Utterance):
            await self.send({"type": "speech_ended", "duration_s": round(event.end_s - event.start_s, 3)})
            await self.interrupt()  # one answer at a time (speech that was too short to interrupt, then a turn)
            self.turn = Turn(next(self.ids))
            self.turn.task = asyncio.create_task(self._run(event, self.turn))

    async def interrupt(self) -> None:
        """Stop the current answer now; tell the client; remember only what was heard."""
        turn, now = self.turn, time.monotonic()
        if turn is None or not turn.playing(now):
            return
        if turn.task is not None and not turn.task.done():
            turn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn.task
        position = turn.playhead(now)
        spoken = turn.spoken(position)
        await self.send({"type": "interrupted", "turn": turn.id, "at_s": round(position, 3), "spoken": spoken})
        if self.on_interrupted:
            self.on_interrupted(turn, spoken)
        self.turn = None

    async def _run(self, utterance: Utterance, turn: Turn) -> None:
        try:
            async for item in self.respond(utterance, turn):
                if isinstance(item, bytes):
                    if turn.first_video_at is None:
                        turn.first_video_at = time.monotonic()
                    await self.send(item)
                    continue
                if item.get("type") == "sentence":
                    turn.sentences.append((item["text"], float(item["at_s"])))
                elif item.get("type") == "done":
                    turn.video_s = item.get("video_s")
                await self.send({**item, "turn": turn.id})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (the turn fails; the session goes on listening)
            with contextlib.suppress(Exception):  # the client has gone: its socket's next read says so
                await self.send({"type": "error", "turn": turn.id, **_error(exc)})

    async def close(self) -> None:
        """The client left: stop the answer in progress (nothing is sent)."""
        turn = self.turn
        if turn is not None and turn.task is not None and not turn.task.done():
            turn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn.task


def _error(exc: BaseException) -> dict:
    to_dict = getattr(exc, "to_dict", None)
    if to_dict is not None:
        return {"status": getattr(exc, "status", 500)} | to_dict()
    return {"status": 500, "error": "turn_failed", "message": f"the answer failed: {type(exc).__name__}"}
