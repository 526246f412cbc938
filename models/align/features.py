"""Frame features of speech in plain numpy (librosa's first call compiles for ~20 s: kept out of request paths).

`frames` cuts 16 kHz audio into 25 ms Hamming windows every 10 ms; `mfcc` gives normalised cepstra and their
deltas (what DTW compares); `formants` gives F1/F2 estimates from LPC roots (what the spectral mouth reads).
"""

from __future__ import annotations

import functools

import numpy as np

from models.media.audio import resample

RATE = 16000
HOP_S, WIN_S = 0.01, 0.025
N_FFT = 512


def frames(audio: np.ndarray, sample_rate: int, rate: int = RATE) -> np.ndarray:
    """(n, window) Hamming-weighted frames centred every 10 ms at `rate`; frame i covers time i * 10 ms."""
    a = resample(np.asarray(audio, np.float32), sample_rate, rate)
    hop, win = int(HOP_S * rate), int(WIN_S * rate)
    n = int(np.ceil(len(a) / hop))
    pad = np.pad(a, (win // 2, win + n * hop - len(a)))
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return pad[idx] * np.hamming(win).astype(np.float32)


@functools.cache
def _mel_filters(rate: int, n_fft: int, n_mels: int = 26, fmin: float = 80.0, fmax: float = 7600.0) -> np.ndarray:
    def mel(f):
        return 2595 * np.log10(1 + f / 700)

    pts = 700 * (10 ** (np.linspace(mel(fmin), mel(fmax), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    return np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None).astype(np.float32)


def power_spectrum(fr: np.ndarray) -> np.ndarray:
    return (np.abs(np.fft.rfft(fr, N_FFT)) ** 2).astype(np.float32)


def mfcc(audio: np.ndarray, sample_rate: int, n: int = 13) -> np.ndarray:
    """(frames, 2 * (n - 1)): cepstra 1..n-1 (no energy term: loudness differs between voices) normalised per
    utterance, and their deltas."""
    mel = np.log(power_spectrum(frames(audio, sample_rate)) @ _mel_filters(RATE, N_FFT).T + 1e-8)
    k = np.arange(mel.shape[1])
    dct = np.cos(np.pi / mel.shape[1] * (k[None, :] + 0.5) * np.arange(1, n)[:, None])
    c = mel @ dct.T
    c = (c - c.mean(0)) / (c.std(0) + 1e-6)
    return np.hstack([c, np.gradient(c, axis=0)]).astype(np.float32)


def formants(fr: np.ndarray, rate: int, order: int = 10) -> np.ndarray:
    """(frames, 2): F1 and F2 in Hz from the roots of an LPC polynomial (autocorrelation method), NaN where no
    resonance fits. `fr` are windowed frames at `rate` (10 kHz keeps the first formants in 5 poles)."""
    x = np.diff(fr, axis=1, prepend=0)  # pre-emphasis, per frame
    n = x.shape[1]
    r = np.stack([np.sum(x[:, : n - k] * x[:, k:], axis=1) for k in range(order + 1)], axis=1)
    a = _levinson(r, order)
    comp = np.zeros((len(a), order, order))  # companion matrices: their eigenvalues are the roots
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    freq = np.angle(roots) * rate / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-9)) * rate / np.pi
    ok = (freq > 200) & (freq < rate / 2 - 200) & (bw < 500)
    freq = np.where(ok, freq, np.inf)
    freq.sort(axis=1)
    out = freq[:, :2]
    return np.where(np.isfinite(out), out, np.nan).astype(np.float32)


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """LPC coefficients (frames, order + 1) from autocorrelations (frames, order + 1), all frames at once."""
    m = len(r)
    a = np.zeros((m, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0] + 1e-9
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1 - k**2) + 1e-12
    return a
