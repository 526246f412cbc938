"""End of turn from voice activity: the state machine of one microphone stream.

Fed audio with the speech probability of each 32 ms window (models/live/vad.py), it says when the person started
speaking (`SpeechStarted`: early, so an avatar talking over them can stop at once), when they finished
(`Utterance`: after `end_silence_s` of silence, with their audio from a little before the start), and when what
sounded like speech was too short to be a turn (`Discarded`: a cough, a click). Pauses shorter than the end
silence stay inside the turn; an utterance longer than `max_utterance_s` is cut there and a new one begins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.live.vad import RATE, WINDOW


@dataclass(frozen=True)
class EndpointConfig:
    threshold: float = 0.5  # a window at or above this is speech
    min_rms: float = 0.01  # ... if it is louder than this (-40 dBFS): Silero hears speech in faint sound too,
    # such as what a browser's echo cancellation leaves of the avatar's own voice (-50 dBFS, measured)
    release: float = 0.35  # below this, silence (between the two: as before, so speech does not flicker)
    start_s: float = 0.096  # speech this long (3 windows) has started: what barge-in waits for
    min_utterance_s: float = 0.25  # shorter speech is not a turn
    end_silence_s: float = 0.6  # silence that ends a turn
    max_utterance_s: float = 30.0
    preroll_s: float = 0.3  # audio kept before the detected start (the onset the VAD needed to be sure of)


@dataclass(frozen=True)
class SpeechStarted:
    at_s: float  # stream time of the first speech window


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # float32, 16 kHz, from `preroll_s` before the start to the end of speech
    start_s: float
    end_s: float  # stream time the speech ended (the turn was detected end_silence_s later)


@dataclass(frozen=True)
class Discarded:
    start_s: float
    end_s: float


class Endpointer:
    def __init__(self, config: EndpointConfig | None = None):
        self.cfg = config or EndpointConfig()
        self.windows = 0  # windows seen
        self.audio = np.zeros(0, np.float32)  # since `self.audio_from` (windows)
        self.audio_from = 0
        self.speaking = False
        self.started: int | None = None  # first speech window of the current run
        self.last_speech: int | None = None  # last speech window of the current run
        self.announced = False

    def push(self, audio: np.ndarray, probs: np.ndarray) -> list:
        """`audio`: the samples whose windows `probs` scored (a whole number of windows, in order)."""
        if len(audio) != len(probs) * WINDOW:
            raise ValueError(f"{len(audio)} samples for {len(probs)} windows of {WINDOW}")
        self.audio = np.concatenate([self.audio, np.asarray(audio, np.float32)])
        events = []
        frames = np.asarray(audio, np.float32).reshape(len(probs), WINDOW)
        loud = np.sqrt(np.mean(np.square(frames), axis=1)) >= self.cfg.min_rms
        for p, heard in zip(probs, loud, strict=True):
            events += self._window(float(p) if heard else 0.0)
            self.windows += 1
        self._trim()
        return events

    def _window(self, p: float) -> list:
        cfg, w = self.cfg, self.windows
        speech = p >= cfg.threshold or (self.speaking and p >= cfg.release)
        out = []
        if speech:
            if self.started is None:
                self.started = w
            self.speaking, self.last_speech = True, w
            if not self.announced and (w + 1 - self.started) * WINDOW / RATE >= cfg.start_s:
                self.announced = True
                out.append(SpeechStarted(self._t(self.started)))
            if (w + 1 - self.started) * WINDOW / RATE >= cfg.max_utterance_s:
                out.append(self._end(w + 1))
                self.started, self.announced = w + 1, True  # speech goes on: a new utterance from here
        elif self.started is not None:
            self.speaking = False
            if (w - self.last_speech) * WINDOW / RATE >= cfg.end_silence_s:
                out.append(self._end(self.last_speech + 1))
                self.started, self.announced = None, False
        return out

    def _end(self, end: int):
        start = self.started
        if (end - start) * WINDOW / RATE < self.cfg.min_utterance_s:
            return Discarded(self._t(start), self._t(end))
        first = max(start - int(self.cfg.preroll_s * RATE / WINDOW), self.audio_from)
        a, b = (first - self.audio_from) * WINDOW, (end - self.audio_from) * WINDOW
        return Utterance(self.audio[a:b].copy(), self._t(start), self._t(end))

    def _trim(self) -> None:
        """Keep the audio of the current run and the preroll before it; nothing more."""
        keep_from = self.windows - int(self.cfg.preroll_s * RATE / WINDOW)
        if self.started is not None:
            keep_from = min(keep_from, self.started - int(self.cfg.preroll_s * RATE / WINDOW))
        keep_from = max(keep_from, self.audio_from)
        self.audio = self.audio[(keep_from - self.audio_from) * WINDOW :]
        self.audio_from = keep_from

    @staticmethod
    def _t(window: int) -> float:
        return window * WINDOW / RATE
