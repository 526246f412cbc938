"""MP4 writing with PyAV (bundled FFmpeg: libx264 + AAC) and decoding back for checks.

Audio is encoded progressively as the video advances, so the file is interleaved (audio and video close
together in the byte stream) whether the caller hands over the audio first or last. The AAC encoder's priming
samples are left to FFmpeg: its packets carry negative timestamps and the MP4 muxer writes an edit list, so
players start the audio at sample 0 together with frame 0 (checked by tests/unit/test_media.py).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from models.media.yuv import video_frame

AUDIO_LEAD_S = 0.5  # audio kept encoded this far ahead of the video


class _Encoder:
    """Streams of one container: H.264 yuv420p video + mono AAC audio."""

    def __init__(
        self,
        container,
        width: int,
        height: int,
        fps: float,
        sample_rate: int,
        preset: str,
        crf: int,
        gop: int | None,
        threads: int = 0,
        params: str = "",
    ):
        self.container = container
        self.rate = Fraction(fps).limit_denominator(1001)
        v = container.add_stream("libx264", rate=self.rate)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.time_base = 1 / self.rate
        opts = {"preset": preset, "crf": str(crf), **({"x264-params": params} if params else {})}
        if gop:  # streaming: fixed GOPs and no encoder delay, so each fragment is out as soon as it is complete
            opts |= {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "tune": "zerolatency"}
        v.codec_context.options = opts
        v.thread_type = "AUTO"
        v.codec_context.thread_count = threads  # 0 = x264 decides; 1 when many videos encode side by side
        a = container.add_stream("aac", rate=sample_rate)
        a.layout, a.bit_rate = "mono", 64000
        self.video, self.audio_stream = v, a
        self.sample_rate = sample_rate
        self.n_frames = 0
        self.audio = np.zeros(0, np.float32)
        self.audio_done = 0

    def frames(self, frames: Iterable[np.ndarray]) -> None:

        for rgb in frames:
            frame = video_frame(rgb)
            frame.pts = self.n_frames
            self.container.mux(self.video.encode(frame))
            self.n_frames += 1
        self.pump(self.n_frames / float(self.rate) + AUDIO_LEAD_S)

    def add_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        from models.media.audio import resample

        audio = resample(np.asarray(audio, np.float32), sample_rate, self.sample_rate)
        self.audio = np.concatenate([self.audio, audio])
        self.pump(self.n_frames / float(self.rate) + AUDIO_LEAD_S)

    def pump(self, until_s: float | None) -> None:
        """Encode the audio received so far, up to `until_s` (None: all of it)."""
        import av

        end = len(self.audio) if until_s is None else min(len(self.audio), int(until_s * self.sample_rate))
        step = 1024 * 8
        while self.audio_done < end:
            chunk = self.audio[self.audio_done : min(end, self.audio_done + step)]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = self.sample_rate, self.audio_done
            frame.time_base = Fraction(1, self.sample_rate)
            self.container.mux(self.audio_stream.encode(frame))
            self.audio_done += len(chunk)

    def finish(self) -> None:
        self.pump(None)
        self.container.mux(self.video.encode(None))
        self.container.mux(self.audio_stream.encode(None))


class Mp4Writer:
    """An MP4 written to a temporary file beside `path` and renamed into place only when complete."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, sample_rate: int,
                 preset: str = "veryfast", crf: int = 23, gop: int | None = None, threads: int = 0,
                 params: str = ""):  # fmt: skip
        import av

        self.path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".mp4.part")
        os.close(fd)
        self.tmp = Path(tmp)
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        self.enc = _Encoder(self.container, width, height, fps, sample_rate, preset, crf, gop, threads, params)
        self.closed = False

    def write_frames(self, frames: Iterable[np.ndarray]) -> None:
        self.enc.frames(frames)

    def write_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        self.enc.add_audio(audio, sample_rate)

    def close(self) -> Path:
        if not self.closed:
            self.closed = True
            try:
                self.enc.finish()
                self.container.close()
            except BaseException:
                self.tmp.unlink(missing_ok=True)
                raise
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.container.close()
            finally:
                self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, audio: np.ndarray, sample_rate: int, **kw
) -> Path:
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    with Mp4Writer(path, w, h, fps, sample_rate, **kw) as writer:
        writer.write_audio(audio, sample_rate)
        writer.write_frames([first])
        writer.write_frames(frames)
    return Path(path)


def _open(source: str | Path | bytes):
    import av

    return av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))


def probe(source: str | Path | bytes) -> dict:
    """Decode everything back and describe it (codecs, sizes, frame count, durations, audio start)."""
    with _open(source) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        a_dur = float(a.duration * a.time_base) if a.duration else None  # the edit list's length: what players play
        info = {"video_codec": v.codec_context.name, "audio_codec": a.codec_context.name, "width": v.width,
                "height": v.height, "pix_fmt": v.codec_context.pix_fmt, "fps": float(v.average_rate or v.guessed_rate),
                "sample_rate": a.codec_context.sample_rate}  # fmt: skip
        n_frames, samples, audio_start = 0, 0, None
        for frame in c.decode(v, a):
            if isinstance(frame, type(None)):
                continue
            if frame.__class__.__name__ == "VideoFrame":
                n_frames += 1
            else:
                if audio_start is None:
                    audio_start = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                samples += frame.samples
    info |= {"n_frames": n_frames, "video_duration_s": n_frames / info["fps"]}
    decoded = samples / info["sample_rate"]  # includes the encoder's padding up to a whole AAC frame
    info |= {"audio_duration_s": a_dur or decoded, "audio_decoded_s": decoded, "audio_start_s": audio_start or 0.0}
    return info


def decode_frames(source: str | Path | bytes, max_frames: int | None = None) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB."""
    out = []
    with _open(source) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(out) >= max_frames:
                break
    return np.stack(out)


def decode_audio(source: str | Path | bytes) -> tuple[np.ndarray, int, float]:
    """(float32 mono samples, sample rate, start time in s as a player would place them)."""
    chunks, start, sr = [], None, 0
    with _open(source) as c:
        for frame in c.decode(audio=0):
            if start is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            arr = frame.to_ndarray()
            chunks.append(arr.reshape(-1) if arr.shape[0] == 1 else arr.mean(0))
            sr = frame.sample_rate
    return np.concatenate(chunks).astype(np.float32), sr, start or 0.0
