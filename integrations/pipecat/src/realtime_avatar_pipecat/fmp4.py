"""The server's live fMP4 (an init segment, then moof+mdat fragments) decoded as it arrives: RGB frames and PCM
with their media times. The init segment is opened with PyAV for the codecs' configuration; each fragment's
samples are cut from its mdat by its trun and fed to one H.264 and one AAC decoder kept for the whole stream
(AAC frames overlap: a decoder per fragment would click at every join)."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Decoded:
    """What one fragment held: frames (media time s, HxWx3 uint8 RGB) and audio (media time s, int16 mono)."""

    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        if size < head or at + size > end:
            return
        yield kind, at + head, at + size
        at += size


def _trun(data: bytes, a: int) -> tuple[int, list[tuple[int, int]]]:
    """(data offset, [(duration, size)]) of a trun box's payload at `a` (other sample fields are skipped)."""
    flags = struct.unpack(">I", data[a : a + 4])[0] & 0xFFFFFF
    count = struct.unpack(">I", data[a + 4 : a + 8])[0]
    at, offset = a + 8, 0
    if flags & 0x1:
        offset = struct.unpack(">i", data[at : at + 4])[0]
        at += 4
    if flags & 0x4:
        at += 4
    samples = []
    for _ in range(count):
        duration = size = 0
        if flags & 0x100:
            duration, at = struct.unpack(">I", data[at : at + 4])[0], at + 4
        if flags & 0x200:
            size, at = struct.unpack(">I", data[at : at + 4])[0], at + 4
        at += 4 * bool(flags & 0x400) + 4 * bool(flags & 0x800)
        samples.append((duration, size))
    return offset, samples


class Fmp4Decoder:
    """Feed the stream's bytes in any pieces (`feed`); get what each complete fragment decodes to."""

    def __init__(self):
        self.buffer = b""
        self.tracks: dict[int, dict] = {}  # track id -> {kind, timescale, codec}
        self._init = None

    def feed(self, data: bytes) -> list[Decoded]:
        self.buffer += data
        out = []
        while True:
            moof = self._next_fragment()
            if moof is None:
                return out
            out.append(moof)

    def _next_fragment(self) -> Decoded | None:
        parts = list(boxes(self.buffer))
        if self._init is None:
            ends = [end for kind, _, end in parts if kind == b"moov"]
            if not ends:
                return None
            self._open(self.buffer[: ends[0]])
            self.buffer = self.buffer[ends[0] :]
            parts = list(boxes(self.buffer))
        for (kind, a, end), nxt in zip(parts, parts[1:], strict=False):
            if kind == b"moof" and nxt[0] == b"mdat":
                fragment, self.buffer = self.buffer[: nxt[2]], self.buffer[nxt[2] :]
                return self._decode(fragment, a, end)
        return None

    def _open(self, init: bytes) -> None:
        import av

        self._init = av.open(io.BytesIO(init), format="mp4")
        for stream in self._init.streams:
            scale = stream.time_base.denominator / stream.time_base.numerator
            self.tracks[stream.id] = {"kind": stream.type, "timescale": scale, "codec": stream.codec_context}

    def _decode(self, fragment: bytes, moof_payload: int, moof_end: int) -> Decoded:
        import av

        out, moof_start = Decoded(), moof_payload - 8
        for kind, a, end in boxes(fragment, moof_payload, moof_end):
            if kind != b"traf":
                continue
            track, base, offset, samples = None, 0, 0, []
            for sub, b, _ in boxes(fragment, a, end):
                if sub == b"tfhd":
                    track = struct.unpack(">I", fragment[b + 4 : b + 8])[0]
                elif sub == b"tfdt":
                    version = fragment[b]
                    base = struct.unpack(">Q" if version else ">I", fragment[b + 4 : b + (12 if version else 8)])[0]
                elif sub == b"trun":
                    offset, samples = _trun(fragment, b)
            info = self.tracks.get(track)
            if info is None:
                continue
            at, t = moof_start + offset, base  # the data offset counts from the moof (default-base-is-moof)
            for duration, size in samples:
                packet = av.Packet(fragment[at : at + size])
                packet.pts = packet.dts = t
                at, seconds = at + size, t / info["timescale"]
                t += duration
                for frame in info["codec"].decode(packet):
                    if info["kind"] == "video":
                        out.frames.append((seconds, frame.to_ndarray(format="rgb24")))
                    else:
                        out.audio.append((seconds, _pcm16(frame)))
        return out


def _pcm16(frame) -> np.ndarray:
    samples = frame.to_ndarray()
    mono = samples.reshape(-1) if samples.ndim == 1 or samples.shape[0] == 1 else samples.mean(axis=0)
    if mono.dtype.kind == "f":
        return (np.clip(mono, -1, 1) * 32767).astype(np.int16)
    return mono.astype(np.int16)
