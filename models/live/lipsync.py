"""A face for a voice that streams in: a client's speech (its own TTS, 16-bit PCM at a rate it declares) in, one
continuous fMP4 out in real time, with the client's audio muxed in and idle frames (blinks, breathing, small head
motion) between utterances. Transport-agnostic asyncio, as models/live/session.py: the caller feeds PCM
(`feed`), `interrupt`s and `end`s, and gets everything to send through `send`; how a piece gets its phonemes
(`align`) and its frames (`render`) is the caller's.

The loop keeps the video at most `lead_s` ahead of real time. Speech is animated in pieces: once `lookahead_s`
of it is buffered (the first piece of an utterance after `first_s`), or the voice pauses (`gap_s` without new
audio), up to `max_piece_s` at a time; each piece is recognised with the `context_s` of audio before it. When
there is no speech and the video is about to run dry, an idle piece of silence goes out.

An interrupt drops the buffered speech and sends an idle piece at once (the mouth shuts in it), with
{"type": "interrupted", "at_s": media time where the idle starts}: what was already sent is the player's to drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from models.media.fragments import EncodedChunk
from models.stream import ChunkJob, LiveVideo
from models.tts.base import Phoneme, SpeechChunk

Align = Callable[[np.ndarray, int], Awaitable[tuple[list[Phoneme], str]]]  # (phonemes, source) of audio
Render = Callable[[ChunkJob], Awaitable[EncodedChunk]]
Send = Callable[[dict | bytes], Awaitable[None]]


@dataclass(frozen=True)
class LipsyncConfig:
    lookahead_s: float = 0.32  # speech buffered before a piece is animated: the mouth's look-ahead
    first_s: float = 0.2  # ...for the first piece of an utterance
    max_piece_s: float = 0.4  # most speech animated in one piece (an interrupt waits for the piece in hand)
    gap_s: float = 0.12  # no audio for this long: the voice paused, what is buffered goes out
    lead_s: float = 0.4  # video sent ahead of real time, at most
    low_s: float = 0.12  # below this lead, an idle piece goes out (when there is no speech)
    idle_s: float = 0.24  # length of an idle piece (6 frames at 25 fps)
    context_s: float = 0.3  # audio before a piece given to the recogniser
    max_buffer_s: float = 120.0  # speech buffered ahead of the video, at most (a client that sends too far ahead
    #                              is refused rather than held in memory)


@dataclass
class LipsyncStats:
    pieces: int = 0
    idle_pieces: int = 0
    speech_s: float = 0.0
    align_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)


class LipsyncSession:
    def __init__(self, live: LiveVideo, sample_rate: int, align: Align, render: Render, send: Send,
                 config: LipsyncConfig | None = None, clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.live, self.rate, self.config, self.clock = live, sample_rate, config or LipsyncConfig(), clock
        self._align, self._render, self._send = align, render, send
        self.buffer = np.zeros(0, np.float32)  # speech received, not yet animated
        self.context = np.zeros(0, np.float32)  # the last animated speech (recogniser context)
        self.last_audio = -1e9  # when audio last arrived
        self.t0: float | None = None  # when the first fragment went out
        self.speaking = False
        self.ending = self.interrupted = False
        self.wake = asyncio.Event()
        self.stats = LipsyncStats()

    # the client's side ---------------------------------------------------------------------------------------
    def feed(self, pcm: bytes) -> None:
        """16-bit little-endian mono PCM at the declared rate."""
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        if (len(self.buffer) + len(samples)) / self.rate > self.config.max_buffer_s:
            raise BufferError(f"more than {self.config.max_buffer_s:g} s of audio ahead of the video")
        self.buffer = np.concatenate([self.buffer, samples])
        self.last_audio = self.clock()
        self.wake.set()

    def interrupt(self) -> None:
        self.interrupted = True
        self.wake.set()

    def end(self) -> None:
        """Play out what is buffered, then finish the stream."""
        self.ending = True
        self.wake.set()

    # the loop ------------------------------------------------------------------------------------------------
    @property
    def media_s(self) -> float:
        return 0.0 if self.live.muxer is None else self.live.muxer.n_frames / self.live.fps

    def lead(self) -> float:
        return 0.0 if self.t0 is None else self.media_s - (self.clock() - self.t0)

    async def run(self) -> None:
        """Until `end`: the stream's bytes and events through `send` (the init segment with the first piece)."""
        await self._idle()
        while True:
            if self.interrupted:
                await self._interrupt()
            elif (take := self._ready()) > 0:
                await self._speech(take)
            elif self.ending and not len(self.buffer):
                await self._send(self.live.finish())
                await self._send({"type": "done", "at_s": round(self.media_s, 3)})
                return
            elif self.lead() < self.config.low_s:
                await self._idle()
            else:
                await self._sleep()

    def _ready(self) -> int:
        """Samples of speech to animate now (0: wait)."""
        c, n = self.config, len(self.buffer)
        if n == 0 or self.lead() >= c.lead_s:
            return 0
        quiet = self.clock() - self.last_audio >= c.gap_s
        enough = n >= (c.lookahead_s if self.speaking else c.first_s) * self.rate
        dry = self.speaking and self.lead() < c.low_s  # a voice that arrives in real time: no idle inside it
        return min(n, int(c.max_piece_s * self.rate)) if enough or quiet or dry or self.ending else 0

    async def _sleep(self) -> None:
        """Until new audio, a control message, or the next decision is due."""
        c = self.config
        due = max(min(self.lead() - c.low_s, c.gap_s), 0.005)
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), due)

    async def _speech(self, n: int) -> None:
        piece, self.buffer = self.buffer[:n], self.buffer[n:]
        heard = np.concatenate([self.context, piece])
        t = time.perf_counter()
        phonemes, source = await self._align(heard, self.rate)
        self.stats.align_ms.append((time.perf_counter() - t) * 1000)
        offset = len(self.context) / self.rate
        mine = [Phoneme(p.symbol, p.start - offset, p.duration) for p in _after(phonemes, offset)]
        self.context = heard[-int(self.config.context_s * self.rate) :]
        if not self.speaking:
            self.speaking = True
            await self._send({"type": "speaking", "at_s": round(self.media_s, 3)})
        self.stats.speech_s += n / self.rate
        await self._emit(SpeechChunk(piece, self.rate, "", mine, source))

    async def _idle(self, seconds: float | None = None) -> None:
        if self.speaking and self.clock() - self.last_audio >= self.config.gap_s:
            self.speaking = False
            self.context = np.zeros(0, np.float32)
            await self._send({"type": "idle", "at_s": round(self.media_s, 3)})
        self.stats.idle_pieces += 1
        n = int((seconds or self.config.idle_s) * self.rate)
        await self._emit(SpeechChunk(np.zeros(n, np.float32), self.rate, "", [Phoneme("_", 0.0, n / self.rate)]))

    async def _interrupt(self) -> None:
        self.interrupted = self.speaking = False
        self.buffer = self.context = np.zeros(0, np.float32)
        await self._send({"type": "interrupted", "at_s": round(self.media_s, 3)})
        await self._idle(self.config.idle_s / 2)  # a short piece first: the shut mouth leaves sooner

    async def _emit(self, piece: SpeechChunk) -> None:
        self.stats.pieces += 1
        for job in self.live.add_speech(piece):
            t = time.perf_counter()
            chunk = await self._render(job)
            self.stats.render_ms.append((time.perf_counter() - t) * 1000)
            data = self.live.add_video(chunk)
            if self.t0 is None:
                self.t0 = self.clock()
            await self._send(data)


def _after(phonemes: list[Phoneme], t: float) -> list[Phoneme]:
    """The phonemes from time `t` on (one across it is cut there)."""
    out = []
    for p in phonemes:
        end = p.start + p.duration
        if end > t:
            start = max(p.start, t)
            out.append(Phoneme(p.symbol, start, end - start))
    return out
