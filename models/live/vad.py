"""Silero VAD (the ONNX model shipped in the `silero-vad` wheel) on onnxruntime: speech probabilities of 16 kHz
audio in 32 ms windows. Only the model file is used; the package's own code needs torch and is never imported.

The model is stateful (an LSTM state plus the last 64 samples of context); the state travels with the audio
(`VadState`), so one session object serves any number of streams, and a stream's state can cross a process
boundary (the API keeps it, the speech service runs the model)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import EngineUnavailable

RATE = 16000  # the rate the live endpoint takes; Silero also runs at 8 kHz, which we do not use
WINDOW = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples of the previous window the model sees before each one


@dataclass
class VadState:
    """One stream's model state, its context samples, and samples not yet a whole window."""

    lstm: np.ndarray = field(default_factory=lambda: np.zeros((2, 1, 128), np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT, np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def as_dict(self) -> dict:
        return {"lstm": self.lstm.ravel().tolist(), "context": self.context.tolist(), "pending": self.pending.tolist()}

    @classmethod
    def from_dict(cls, d: dict | None) -> VadState:
        if not d:
            return cls()
        return cls(np.asarray(d["lstm"], np.float32).reshape(2, 1, 128), np.asarray(d["context"], np.float32),
                   np.asarray(d["pending"], np.float32))  # fmt: skip


def model_path() -> Path:
    """The ONNX file inside the installed `silero-vad` package (found without importing the package)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable("voice activity detection needs the silero-vad package (make setup installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise EngineUnavailable(f"the silero-vad package has no model at {path}")
    return path


class SileroVad:
    """One onnxruntime session (one thread: a window takes ~0.15 ms on a CPU), shared by all streams (run() is
    thread-safe; a stream's own windows run in order, their state passed along)."""

    def __init__(self, path: Path | None = None):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path or model_path()), opts, providers=["CPUExecutionProvider"])

    def probabilities(self, audio: np.ndarray, state: VadState) -> tuple[np.ndarray, VadState]:
        """Speech probability of each whole 32 ms window of `state.pending` + `audio` (float32, 16 kHz, mono);
        the rest waits in the returned state for the next call."""
        samples = np.concatenate([state.pending, np.asarray(audio, np.float32)])
        n = len(samples) // WINDOW
        lstm, context, probs = state.lstm, state.context, np.zeros(n, np.float32)
        rate = np.array(RATE, np.int64)
        for i in range(n):
            window = samples[i * WINDOW : (i + 1) * WINDOW]
            x = np.concatenate([context, window])[None, :]
            out, lstm = self.session.run(None, {"input": x, "state": lstm, "sr": rate})
            probs[i], context = float(out[0, 0]), window[-CONTEXT:]
        return probs, VadState(lstm, context, samples[n * WINDOW :])
