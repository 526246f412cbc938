"""RealtimeAvatarVideoService: a self-hosted talking face for a Pipecat pipeline, placed after the TTS.

It sends the TTS audio (`TTSAudioRawFrame`s, between `TTSStartedFrame` and `TTSStoppedFrame`) over the
realtime-avatar server's live audio socket (`/api/v1/animate/live`), decodes the fMP4 that comes back (the face
speaking that audio, idle frames between utterances) and pushes `OutputImageRawFrame`s and the matching audio
downstream, released together at their media times so the transport plays voice and face in sync. The TTS
audio frames are consumed: the audio that goes on is the server's, which is what the face was made for.

When speech starts, the idle video still held is skipped (the head's idle sway jumps by at most the server's
lead, 0.4 s of motion): the face starts speaking when its first frame arrives, not after the idle frames sent
ahead of it. An `InterruptionFrame` cuts the avatar at once: what is buffered here is dropped, the server is told, and
fragments that were on their way are skipped until it answers. A server that is down, refuses the key or
fails ends in an `ErrorFrame` that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import time

import numpy as np
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup

from realtime_avatar_pipecat.fmp4 import Fmp4Decoder

PLAYOUT_S = 0.1  # media held before it is released (absorbs the network's and the decoder's jitter)


class RealtimeAvatarVideoService(FrameProcessor):
    def __init__(self, *, base_url: str, api_key: str | None = None, avatar: str = "default", size: int = 512,
                 fps: float = 25, language: str = "en", sample_rate: int | None = None, **kwargs):  # fmt: skip
        """`base_url`: the server (http://host:3000); `api_key`: one of its keys, if it has any; `avatar`, `size`,
        `fps`, `language`: the face and the language spoken; `sample_rate`: of the TTS audio (default: the
        pipeline's output rate)."""
        super().__init__(**kwargs)
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.avatar, self.size, self.fps, self.language, self.rate = avatar, size, fps, language, sample_rate
        self.ws = None
        self.decoder = Fmp4Decoder()
        self.queue: list = []  # heap of (media s, order, "video"|"audio", payload) waiting for their time
        self._order = itertools.count()
        self.skipping = False  # an interrupt was sent: fragments are stale until the server answers
        self.speaking = False
        self.held_stop: TTSStoppedFrame | None = None
        self.t0: float | None = None  # monotonic time at which media time 0 plays
        self.skip_before = 0.0  # media time before which nothing more is played (idle video overtaken by speech)
        self._tasks: list[asyncio.Task] = []
        self.stats = {"first_audio_in": None, "first_speech_out": None, "frames_out": 0}

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        self.rate = self.rate or setup.audio_out_sample_rate or 24000

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._connect()
        elif isinstance(frame, TTSAudioRawFrame):
            await self._send_audio(frame)
        elif isinstance(frame, TTSStoppedFrame):
            self.held_stop = frame  # goes on when the face has finished saying it (the server's "idle")
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._close()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self):
        await super().cleanup()
        await self._close()

    # -- the socket ------------------------------------------------------------------------------------------
    async def _connect(self) -> None:
        import websockets

        url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/api/v1/animate/live"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            self.ws = await asyncio.wait_for(websockets.connect(url, max_size=None, additional_headers=headers), 10)
            await self.ws.send(json.dumps({"sample_rate": self.rate, "language": self.language, "avatar": self.avatar,
                                           "size": self.size, "fps": self.fps}))  # fmt: skip
            ready = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if ready.get("type") != "ready":
                raise ConnectionError(f"unexpected first message {ready}")
        except Exception as exc:  # noqa: BLE001  (every way of failing ends in one ErrorFrame)
            await self._fail(_reason(exc, self.base_url), exc)
            return
        self._tasks = [self.create_task(self._receive()), self.create_task(self._play())]

    async def _send_audio(self, frame: TTSAudioRawFrame) -> None:
        if self.ws is None:
            return
        self.stats["first_audio_in"] = self.stats["first_audio_in"] or time.monotonic()
        pcm = np.frombuffer(frame.audio, np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if frame.sample_rate != self.rate:
            pcm = _resample(pcm, frame.sample_rate, self.rate)
        try:
            for at in range(0, len(pcm), self.rate):  # the server takes at most 2 s a message
                await self.ws.send(pcm[at : at + self.rate].tobytes())
        except Exception as exc:  # noqa: BLE001
            await self._fail(f"the realtime-avatar socket closed while sending audio: {exc}", exc)

    async def _interrupt(self) -> None:
        self.queue.clear()
        self.held_stop = None
        if self.ws is not None:
            self.skipping = True
            try:
                await self.ws.send(json.dumps({"type": "interrupt"}))
            except Exception as exc:  # noqa: BLE001
                await self._fail(f"the realtime-avatar socket closed: {exc}", exc)

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self._fragments(self.decoder.feed(message))
                else:
                    await self._event(json.loads(message))
        except Exception as exc:  # noqa: BLE001
            await self._fail(f"the realtime-avatar socket failed: {exc}", exc)
            return
        close = getattr(self.ws, "close_code", None)
        if close not in (None, 1000):
            await self._fail(f"the realtime-avatar server closed the socket ({close}: {self.ws.close_reason})")

    def _fragments(self, decoded) -> None:
        for part in decoded:
            if self.skipping:
                continue  # made before the server heard the interrupt (the decoders were still fed)
            for t, rgb in part.frames:
                if t >= self.skip_before:
                    heapq.heappush(self.queue, (t, next(self._order), "video", rgb))
            if self.speaking:
                for t, pcm in part.audio:
                    heapq.heappush(self.queue, (t, next(self._order), "audio", pcm))

    async def _event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "interrupted":
            self.skipping, self.speaking, self.t0 = False, False, None  # the idle video starts at at_s: play it now
        elif kind == "speaking":  # the idle video still held before it is skipped: the face speaks now
            self.speaking, self.skip_before = True, event.get("at_s", 0.0)
            self.queue = [item for item in self.queue if item[0] >= self.skip_before]
            heapq.heapify(self.queue)
            self.t0 = time.monotonic() + PLAYOUT_S - self.skip_before
        elif kind == "idle":  # the TTSStoppedFrame goes on when the face reaches the end of the utterance
            self.speaking = False
            if self.held_stop is not None and not self.skipping:
                heapq.heappush(self.queue, (event.get("at_s", 0.0), next(self._order), "stop", self.held_stop))
                self.held_stop = None

    async def _play(self) -> None:
        """Release what was decoded in the order of its media times, each at its time: the frame and the audio of
        each moment go out together."""
        while True:
            if not self.queue:
                await asyncio.sleep(0.005)
                continue
            t, _, kind, payload = self.queue[0]
            now = time.monotonic()
            if self.t0 is None or now - (self.t0 + t) > 1.0:  # the start, after an interrupt, or a long stall
                self.t0 = now + PLAYOUT_S - t
            wait = self.t0 + t - now
            if wait > 0:
                await asyncio.sleep(min(wait, 0.02))
                continue
            heapq.heappop(self.queue)
            if kind == "stop":
                await self.push_frame(payload)
                continue
            if kind == "video":
                self.stats["frames_out"] += 1
                size = (payload.shape[1], payload.shape[0])
                out = OutputImageRawFrame(image=payload.tobytes(), size=size, format="RGB")
            else:
                self.stats["first_speech_out"] = self.stats["first_speech_out"] or time.monotonic()
                out = TTSAudioRawFrame(audio=payload.tobytes(), sample_rate=self.rate, num_channels=1)
            out.pts = int(t * 1e9)  # its media time (the transport plays it when it arrives)
            await self.push_frame(out)

    async def _fail(self, reason: str, exc: Exception | None = None) -> None:
        await self.push_error(error_msg=reason, exception=exc)
        await self._close()

    async def _close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task is not asyncio.current_task():
                await self.cancel_task(task)
        ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # closing a broken socket
                await ws.close()


def _reason(exc: Exception, url: str) -> str:
    """What went wrong, in one line a bot's log can show."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return f"the realtime-avatar server at {url} refused the API key (HTTP {status})"
    if status:
        return f"the realtime-avatar server at {url} refused the socket (HTTP {status})"
    if isinstance(exc, OSError | asyncio.TimeoutError):
        return f"the realtime-avatar server at {url} is unreachable: {exc or type(exc).__name__}"
    return f"the realtime-avatar server at {url} failed: {exc}"


def _resample(pcm: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    return np.clip(soxr.resample(pcm.astype(np.float32) / 32768, rate_in, rate_out) * 32768, -32768, 32767).astype(
        np.int16
    )
