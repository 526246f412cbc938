"""Fragmented MP4 for live streaming: H.264 encoded chunk by chunk, muxed with continuous AAC into an init
segment and fragments (what Media Source Extensions in a browser play as they arrive).

Each chunk of frames gets its own x264 encoder and so starts with a keyframe. That lets a chunk be encoded
wherever its frames are rendered (the avatar service, in one batch with other streams' chunks), while the
stream's single muxer and AAC encoder live with the client connection. x264 writes the same SPS/PPS for the
same settings, so the chunks join into one track; the muxer checks that they do.

Audio is encoded as the video advances (a little ahead, so FFmpeg's interleaver releases the video packets at
once). A fragmented file has no edit list to hide the AAC encoder's delay (1024 samples), so FFmpeg starts both
tracks with it: the first frame lasts that much longer and speech starts that much later, together. Picture and
sound stay in sync from the first fragment on (checked by tests/unit/test_stream.py).
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import re
import struct
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from models.media.yuv import video_frame

AUDIO_LEAD_S = 0.1  # audio muxed this far ahead of the video, so every fragment is released with its audio


def x264_options(preset: str, crf: int, params: str = "") -> dict[str, str]:
    """No B-frames and no lookahead (`zerolatency`: a frame's packet comes out as soon as it is encoded), and
    no keyframes inside a chunk (a chunk is at most a few seconds); `params`: x264's own key=value:key=value."""
    return {"preset": preset, "crf": str(crf), "tune": "zerolatency", "g": "600", "keyint_min": "600",
            "sc_threshold": "0", **({"x264-params": params} if params else {})}  # fmt: skip


@dataclass
class EncodedChunk:
    """H.264 packets of consecutive frames (pts in frames from the start of the stream; pts == dts)."""

    data: list[bytes]
    pts: list[int]
    keyframe: list[bool]
    extradata: bytes  # SPS/PPS (Annex B): equal for every chunk encoded with the same settings

    def pack(self) -> dict:
        """JSON-friendly form for the trip between services."""
        blob, extradata = base64.b64encode(b"".join(self.data)), base64.b64encode(self.extradata)
        return {"data": blob.decode(), "sizes": [len(d) for d in self.data], "pts": self.pts,
                "keyframe": self.keyframe, "extradata": extradata.decode()}  # fmt: skip

    @classmethod
    def unpack(cls, d: dict) -> EncodedChunk:
        blob, data, at = base64.b64decode(d["data"]), [], 0
        for size in d["sizes"]:
            data.append(blob[at : at + size])
            at += size
        return cls(data, list(d["pts"]), list(d["keyframe"]), base64.b64decode(d["extradata"]))


def encode_chunk(frames: np.ndarray, first: int, fps: float, preset: str = "veryfast", crf: int = 23,
                 threads: int = 1, params: str = "") -> EncodedChunk:  # fmt: skip
    """(n, H, W, 3) uint8 RGB frames -> H.264 packets; `first` is the stream frame index of frames[0]."""
    import av

    n, h, w = frames.shape[:3]
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base = 1 / _rate(fps)
    cc.framerate = _rate(fps)
    cc.options = x264_options(preset, crf, params)
    cc.flags |= av.codec.context.Flags.global_header  # SPS/PPS in extradata (the mp4 sample entry), not in-band
    cc.thread_count = threads
    packets = []
    for i in range(n):
        frame = video_frame(frames[i])
        frame.pts = first + i
        packets += cc.encode(frame)
    packets += cc.encode(None)
    return EncodedChunk([bytes(p) for p in packets], [int(p.pts) for p in packets],
                        [bool(p.is_keyframe) for p in packets], bytes(cc.extradata or b""))  # fmt: skip


class FragmentMuxer:
    """One stream's fMP4: takes encoded video chunks in order and the audio as it comes; each chunk becomes one
    fragment (moof + mdat, with the audio up to a little past its end) returned at once.

    FFmpeg writes the init segment (its moov describes both tracks exactly); the fragments are written here, so
    each one leaves the moment its chunk is encoded. FFmpeg's own fragmenter holds a fragment back until the next
    packet arrives, which starves a player whenever the next sentence is still being synthesised.
    """

    def __init__(self, width: int, height: int, fps: float, sample_rate: int, preset: str = "veryfast",
                 crf: int = 23, params: str = ""):  # fmt: skip
        from models.media.mp4_parse import parse_moov

        self.rate, self.sample_rate = _rate(fps), sample_rate
        self.init, extradata = _init_segment(width, height, self.rate, sample_rate, preset, crf, params)
        self.extradata = extradata
        tracks = {t.kind: t for t in parse_moov(self.init[self.init.index(b"moov") + 4 :]).values()}
        self.video_track, self.audio_track = tracks["video"], tracks["audio"]
        self.aac = _aac_encoder(sample_rate)
        self.audio = np.zeros(0, np.float32)  # received (from sample `audio_base` on)
        self.audio_base = 0  # samples already encoded and forgotten (a live stream runs for hours)
        self.audio_in = 0  # samples given to the encoder
        self.audio_out = 0  # samples of encoded packets written (the encoder delay included)
        self.pending_audio: list[tuple[bytes, int]] = []  # (packet, duration in samples), not yet written
        self.n_frames = 0
        self.sequence = 0
        self.sent_init = False

    def add_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        from models.media.audio import resample

        self.audio = np.concatenate(
            [self.audio, resample(np.asarray(audio, np.float32), sample_rate, self.sample_rate)]
        )

    def add_video(self, chunk: EncodedChunk) -> bytes:
        if chunk.pts and chunk.pts[0] != self.n_frames:
            raise ValueError(f"chunk starts at frame {chunk.pts[0]}, expected {self.n_frames}")
        if chunk.extradata != self.extradata:
            raise ValueError("the chunk's H.264 parameter sets differ from the stream's (another x264 build?)")
        first = self.n_frames
        self.n_frames += len(chunk.pts)
        self._encode_audio(until=self.n_frames / float(self.rate) + AUDIO_LEAD_S)
        return self._head() + self._fragment(chunk, first)

    def close(self) -> bytes:
        """The rest of the audio, as a last fragment; the stream is then complete."""
        self._encode_audio(until=None)
        return self._head() + (self._fragment(None, self.n_frames) if self.pending_audio else b"")

    def abort(self) -> None:
        self.pending_audio = []

    def _head(self) -> bytes:
        if self.sent_init:
            return b""
        self.sent_init = True
        return self.init

    def _encode_audio(self, until: float | None) -> None:
        """Feed the encoder up to `until` seconds (None: everything, then flush) and keep its packets."""
        import av

        total = self.audio_base + len(self.audio)
        end = total if until is None else min(total, int(until * self.sample_rate))
        packets = []
        while self.audio_in < end:
            part = self.audio[self.audio_in - self.audio_base : min(end, self.audio_in + 8192) - self.audio_base]
            frame = av.AudioFrame.from_ndarray(part[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = (
                self.sample_rate,
                self.audio_in,
                Fraction(1, self.sample_rate),
            )
            packets += self.aac.encode(frame)
            self.audio_in += len(part)
        if until is None:
            packets += self.aac.encode(None)
        self.pending_audio += [(bytes(p), int(p.duration or 1024)) for p in packets]
        if self.audio_in - self.audio_base > 10 * self.sample_rate:  # forget what is encoded
            self.audio = self.audio[self.audio_in - self.audio_base :]
            self.audio_base = self.audio_in

    def _fragment(self, chunk: EncodedChunk | None, first: int) -> bytes:
        """moof + mdat: the chunk's frames and the audio encoded so far. Both tracks start with the AAC
        encoder delay (there is no edit list in a fragmented file): the first frame lasts that much longer."""
        v, a = self.video_track, self.audio_track
        frame = v.timescale / self.rate
        delay = round(AAC_DELAY * v.timescale / self.sample_rate)
        video = []
        if chunk is not None:
            for k, (data, key) in enumerate(zip(chunk.data, chunk.keyframe, strict=True)):
                i = first + k
                start = round(i * frame) + (delay if i else 0)
                video.append((length_prefixed(data), round((i + 1) * frame) + delay - start, key))
        audio = [(data, duration * a.timescale // self.sample_rate, True) for data, duration in self.pending_audio]
        audio_start = self.audio_out * a.timescale // self.sample_rate
        self.audio_out += sum(d for _, d in self.pending_audio)
        self.pending_audio = []
        video_start = round(first * frame) + (delay if first else 0)
        self.sequence += 1
        return fragment(self.sequence, [(v.track_id, video_start, video), (a.track_id, audio_start, audio)])


_START_CODE = re.compile(b"\\x00\\x00\\x01")


def length_prefixed(annexb: bytes) -> bytes:
    """H.264 from x264 (NAL units after 00 00 01 start codes) -> MP4 samples (each NAL unit after its 4-byte
    length, as the avcC of the init segment declares)."""
    starts = [m.end() for m in _START_CODE.finditer(annexb)]
    out = []
    for a, b in itertools.pairwise([*starts, None]):  # no start code: no unit (a strict zip raised)
        # a 4-byte start code's extra zero (and any trailing zero padding) is not part of the unit before it
        nal = annexb[a:] if b is None else annexb[a : b - 3].rstrip(b"\x00")
        if nal:
            out.append(struct.pack(">I", len(nal)) + nal)
    return b"".join(out)


AAC_DELAY = 1024  # samples the AAC encoder puts before the first input sample


def _init_segment(width: int, height: int, rate: Fraction, sample_rate: int, preset: str, crf: int, params: str):
    """ftyp + moov from FFmpeg (with the H.264 and AAC configurations), and the H.264 extradata."""
    import av

    buf = io.BytesIO()
    container = av.open(buf, "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
    v = container.add_stream("libx264", rate=rate)  # opened with the chunks' settings: the same SPS/PPS
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    v.codec_context.time_base = 1 / rate
    v.codec_context.options = x264_options(preset, crf, params)
    a = container.add_stream("aac", rate=sample_rate)
    a.layout, a.bit_rate = "mono", AAC_BITRATE
    container.start_encoding()
    init, extradata = buf.getvalue(), bytes(v.codec_context.extradata or b"")
    with contextlib.suppress(Exception):  # nothing was written; only the header is wanted
        container.close()
    return init, extradata


AAC_BITRATE = 64000


def _aac_encoder(sample_rate: int):
    import av

    cc = av.CodecContext.create("aac", "w")
    cc.sample_rate, cc.layout, cc.format, cc.bit_rate = sample_rate, "mono", "fltp", AAC_BITRATE
    cc.time_base = Fraction(1, sample_rate)
    cc.flags |= av.codec.context.Flags.global_header
    cc.open()
    return cc


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


SYNC, NON_SYNC = 0x02000000, 0x01010000  # sample flags: depends on nothing / depends on others and not sync


def fragment(sequence: int, tracks: list[tuple[int, int, list[tuple[bytes, int, bool]]]]) -> bytes:
    """One moof + mdat. tracks: (track id, base decode time, [(sample data, duration, sync)]) in timescale units;
    tracks without samples are left out."""
    tracks = [t for t in tracks if t[2]]

    def moof(offsets: list[int]) -> bytes:
        trafs = []
        for (track_id, base, samples), offset in zip(tracks, offsets, strict=True):
            rows = b"".join(struct.pack(">III", d, len(s), SYNC if sync else NON_SYNC) for s, d, sync in samples)
            trafs.append(_box(b"traf", _full(b"tfhd", 0, 0x020000, struct.pack(">I", track_id)),
                              _full(b"tfdt", 1, 0, struct.pack(">Q", base)),
                              _full(b"trun", 0, 0x000701, struct.pack(">Ii", len(samples), offset), rows)))  # fmt: skip
        return _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)

    size = len(moof([0] * len(tracks)))  # offsets do not change the size
    offsets, at = [], size + 8  # data follows the mdat header
    for _, _, samples in tracks:
        offsets.append(at)
        at += sum(len(s) for s, _, _ in samples)
    data = b"".join(s for _, _, samples in tracks for s, _, _ in samples)
    return moof(offsets) + _box(b"mdat", data)


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)
