"""The incremental fragmented-MP4 reader: real streams fed in any slicing, hand-built boxes, malformed input."""

import io
import random
import struct
from fractions import Fraction

import numpy as np
import pytest

from models.media import probe
from models.media.boxes import FragmentReader, TruncatedStreamError
from models.media.mp4_parse import NON_SYNC
from tests.helpers import fmp4_stream

pytestmark = pytest.mark.unit
SR, FPS = 22050, 25
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def _frames(n: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)  # noise: real-sized mdats


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def writer_stream() -> bytes:
    """Our own muxer: a fragment per 5-frame chunk, each opening with a keyframe."""
    return fmp4_stream(_frames(50), _tone(2.0), SR, FPS)


@pytest.fixture(scope="module")
def live_stream() -> bytes:
    """What the live route sends: fragments cut every 200 ms as well as at keyframes (one per second), so most
    fragments do not open with a keyframe."""
    import av

    buf, frames, audio = io.BytesIO(), _frames(50), _tone(2.0)
    with av.open(buf, "w", format="mp4", options={"movflags": MOVFLAGS, "frag_duration": "200000"}) as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        v.codec_context.time_base = Fraction(1, FPS)
        v.codec_context.options = {"preset": "veryfast", "tune": "zerolatency", "g": "25", "keyint_min": "25",
                                   "sc_threshold": "0"}  # fmt: skip
        a = out.add_stream("aac", rate=SR)
        a.layout = "mono"
        done = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
            while done < min(len(audio), (i + 1) * SR // FPS):
                chunk = audio[done : done + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = SR, done, Fraction(1, SR)
                out.mux(a.encode(af))
                done += len(chunk)
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    return buf.getvalue()


def _read(data: bytes, sizes=None):
    """All fragments of `data` fed in slices of the given sizes (None: one feed)."""
    reader, out, at = FragmentReader(), [], 0
    for n in sizes or [len(data)]:
        out += reader.feed(data[at : at + n])
        at += n
    out += reader.feed(data[at:]) + reader.close()
    return reader, out


def _random_sizes(total: int, seed: int) -> list[int]:
    rng, sizes = random.Random(seed), []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 1000, 5000]))
    return sizes


@pytest.mark.parametrize("stream", ["writer_stream", "live_stream"])
def test_any_slicing_gives_the_same_fragments(stream, request):
    data = request.getfixturevalue(stream)
    _, whole = _read(data)
    assert len(whole) >= 5
    assert _read(data, [1] * len(data))[1] == whole
    for seed in range(3):
        assert _read(data, _random_sizes(len(data), seed))[1] == whole


@pytest.mark.parametrize("stream", ["writer_stream", "live_stream"])
def test_fragments_are_complete_and_continuous(stream, request):
    data = request.getfixturevalue(stream)
    reader, fragments = _read(data)
    assert {t.kind for t in reader.tracks.values()} == {"video", "audio"}
    assert {t.kind: t.timescale for t in reader.tracks.values()}["audio"] == SR
    first = fragments[0]
    assert first.video_starts_with_keyframe and first.start_s("video") == 0 and first.start_s("audio") == 0
    assert [f.sequence_number for f in fragments] == list(range(1, len(fragments) + 1))
    for prev, f in zip(fragments, fragments[1:], strict=False):
        assert f.offset == prev.offset + prev.size  # moof + mdat after moof + mdat, nothing in between
    for kind in ("video", "audio"):
        spans = [(f.start_s(kind), f.end_s(kind)) for f in fragments if f.track(kind)]
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start == pytest.approx(end, abs=1e-6)
    assert fragments[0].offset == data.index(b"moof") - 4
    end = fragments[-1].offset + fragments[-1].size
    if stream == "writer_stream":
        assert end == len(data)  # ours: nothing after the last fragment
    else:
        assert data[end + 4 : end + 8] == b"mfra"  # the random-access index FFmpeg appends on close: not a fragment

    info = probe(data)
    video = [f.track("video") for f in fragments if f.track("video")]
    audio = [f.track("audio") for f in fragments if f.track("audio")]
    assert sum(t.sample_count for t in video) == info["n_frames"] == 50
    assert sum(t.duration_s for t in video) == pytest.approx(info["video_duration_s"], abs=1 / FPS)
    assert sum(t.duration_s for t in audio) == pytest.approx(info["audio_duration_s"], abs=1 / FPS)
    assert video[-1].end_s == pytest.approx(info["video_duration_s"], abs=1 / FPS)


def test_keyframes_of_a_live_stream(live_stream, writer_stream):
    _, fragments = _read(live_stream)
    keyframes = [f.video_starts_with_keyframe for f in fragments]
    assert keyframes[0] and keyframes.count(True) == 2  # 50 frames, a keyframe every 25: fragments 0 and 1.0 s
    assert len(keyframes) >= 8  # ~200 ms fragments
    assert all(f.track("audio").starts_with_sync for f in fragments if f.track("audio"))
    ours = [f for f in _read(writer_stream)[1] if f.track("video")]
    assert len(ours) == 10 and all(f.video_starts_with_keyframe for f in ours)  # a fragment per chunk


def test_init_segment_first(writer_stream):
    reader = FragmentReader()
    moof = writer_stream.index(b"moof") - 4
    assert reader.feed(writer_stream[: moof - 1]) == [] and not reader.init_complete  # moov ends at `moof`
    assert reader.feed(writer_stream[moof - 1 : moof]) == [] and reader.init_complete
    assert reader.position == moof


# -- hand-built boxes -----------------------------------------------------------------------------------------


def box(kind: bytes, *parts: bytes, large: bool = False) -> bytes:
    payload = b"".join(parts)
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *parts)


def trak(track_id: int, handler: bytes, timescale: int) -> bytes:
    tkhd = full(b"tkhd", 0, 3, struct.pack(">III", 0, 0, track_id), bytes(72))
    mdhd = full(b"mdhd", 1, 0, struct.pack(">QQIQ", 0, 0, timescale, 0), bytes(4))
    hdlr = full(b"hdlr", 0, 0, bytes(4), handler, bytes(12), b"h\0")
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr))


def trex(track_id: int, duration: int, flags: int) -> bytes:
    return full(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, duration, 0, flags))


MOOV_PARTS = (trak(1, b"vide", 1000), trak(2, b"soun", 48000), box(b"mvex", trex(1, 40, NON_SYNC), trex(2, 1024, 0)))
MOOV = box(b"moov", *MOOV_PARTS)
INIT = box(b"ftyp", b"iso5", bytes(4), b"iso5") + MOOV


def moof(seq: int, *trafs: bytes) -> bytes:
    return box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", seq)), *trafs)


def traf(track_id: int, tfhd_flags: int = 0, tfhd_fields: bytes = b"", tfdt: bytes = b"", *truns: bytes) -> bytes:
    return box(b"traf", full(b"tfhd", 0, tfhd_flags, struct.pack(">I", track_id), tfhd_fields), tfdt, *truns)


def tfdt(value: int, version: int = 1) -> bytes:
    return full(b"tfdt", version, 0, struct.pack(">Q" if version else ">I", value))


def trun(count: int, flags: int = 0, first_flags: int | None = None, samples: list[tuple] = ()) -> bytes:
    head = struct.pack(">I", count) + (struct.pack(">I", first_flags) if first_flags is not None else b"")
    body = b"".join(struct.pack(f">{len(s)}I", *s) for s in samples)
    return full(b"trun", 0, flags | (0x4 if first_flags is not None else 0), head, body)


def test_defaults_come_from_trun_then_tfhd_then_trex():
    frag1 = moof(
        1,
        traf(1, 0, b"", tfdt(0), trun(3, 0x300, 0, [(40, 10), (41, 10), (42, 10)])),  # durations and sizes; sync
        traf(2, 0x20028, struct.pack(">II", 2048, 0), tfdt(0, 0), trun(2)),  # tfhd default duration and flags
    )
    frag2 = moof(
        2,
        traf(1, 0, b"", b"", trun(2)),  # no tfdt: continues; trex duration 40, trex flags: non-sync
        traf(2, 0, b"", tfdt(4096), trun(1, 0x400, None, [(NON_SYNC,)]), trun(2)),  # two runs; per-sample flags
    )
    frag3 = moof(3, traf(1, 0x20, struct.pack(">I", 0), b"", trun(1)))  # tfhd flags (sync) over trex (non-sync)
    data = INIT + frag1 + box(b"mdat", bytes(50)) + frag2 + box(b"mdat", bytes(30), large=True)
    data += frag3 + box(b"mdat")
    reader, (f1, f2, f3) = _read(data)
    assert reader.tracks[1].kind == "video" and reader.tracks[2].timescale == 48000
    assert reader.tracks[1].default_sample_duration == 40 and reader.tracks[1].default_sample_flags == NON_SYNC
    v1, a1 = f1.tracks
    assert (v1.sample_count, v1.duration, v1.starts_with_sync) == (3, 123, True)
    assert (a1.sample_count, a1.duration, a1.start_s, a1.starts_with_sync) == (2, 4096, 0, True)
    assert f1.end_s("audio") == pytest.approx(4096 / 48000)
    v2, a2 = f2.tracks
    assert (v2.base_decode_time, v2.duration, v2.sample_count, v2.starts_with_sync) == (123, 80, 2, False)
    assert not f2.video_starts_with_keyframe and f2.start_s("video") == 0.123 and f2.end_s("video") == 0.203
    assert (a2.base_decode_time, a2.sample_count, a2.duration, a2.starts_with_sync) == (4096, 3, 3 * 1024, False)
    assert f2.size == len(frag2) + 16 + 30 and f2.offset == f1.offset + f1.size
    assert f3.video_starts_with_keyframe and f3.start_s("video") == 0.203 and f3.track("video").duration == 40
    assert _read(data, [1] * len(data))[1] == [f1, f2, f3]


def test_merged_trafs_and_missing_tracks():
    frag = moof(7, traf(1, 0, b"", tfdt(80), trun(1, 0x100, NON_SYNC, [(40,)])), traf(1, 0, b"", b"", trun(2)))
    reader, (f,) = _read(INIT + frag + box(b"mdat"))
    (v,) = f.tracks
    assert f.sequence_number == 7 and (v.base_decode_time, v.duration, v.sample_count) == (80, 120, 3)
    assert not v.starts_with_sync and f.track("audio") is None and f.start_s("audio") is None


def test_box_running_to_the_end_is_finished_at_close():
    reader = FragmentReader()
    data = INIT + moof(1, traf(1, 0, b"", tfdt(0), trun(1, 0, 0))) + struct.pack(">I4s", 0, b"mdat")
    assert reader.feed(data) == [] and reader.feed(bytes(1000)) == []
    (f,) = reader.close()
    assert f.size == len(data) + 1000 - len(INIT) and f.video_starts_with_keyframe
    assert reader.close() == []


def test_skipped_boxes_and_64_bit_sizes():
    data = box(b"ftyp", b"isom", large=True) + box(b"free", bytes(3)) + box(b"moov", *MOOV_PARTS, large=True)
    data += box(b"styp", b"msdh") + box(b"moof", moof(1, traf(1, 0, b"", tfdt(0), trun(2)))[8:], large=True)
    data += box(b"mdat", bytes(9), large=True) + box(b"sidx", bytes(20))
    reader, (f,) = _read(data)
    assert reader.init_complete and len(reader.tracks) == 2 and f.track("video").duration == 80
    assert f.size == len(data) - f.offset - 28 and _read(data, [1] * len(data))[1] == [f]


@pytest.mark.parametrize(
    "data, message",
    [
        (struct.pack(">I4s", 4, b"ftyp") + bytes(20), "< its header"),
        (box(b"ftyp", b"iso5") + struct.pack(">IQ", 1, 8)[:4] + b"mdat" + struct.pack(">Q", 8), "< its header"),
        (struct.pack(">I4sQ", 1, b"ftyp", 0), "size 0 < its header"),
        (box(b"ftyp") + moof(1, traf(1, 0, b"", tfdt(0), trun(1))), "before the moov"),
        (b'{"error": "busy"}', "not an ISO BMFF"),
        (INIT + moof(1, traf(1, 0, b"", tfdt(0), trun(5, 0x100, None, [(40,)]))), "trun with 5 samples"),
        (INIT + moof(1, traf(9, 0, b"", tfdt(0), trun(1))), "track 9"),
        (INIT + moof(1) + moof(2), "without an mdat"),
        (INIT + box(b"moof", box(b"traf")), "no mfhd"),
        (INIT + MOOV, "second moov"),
        (box(b"ftyp") + box(b"moov", box(b"trak", box(b"tkhd", bytes(3)))), "tkhd box is truncated"),
        (box(b"ftyp") + box(b"moov", struct.pack(">I4s", 100, b"trak")), "bad size"),
        (box(b"ftyp") + box(b"moov"), "no tracks"),
    ],
)
def test_malformed_input_raises_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        _read(data)
    with pytest.raises(ValueError, match=message):
        _read(data, [1] * len(data))


@pytest.mark.parametrize("cut", [1, 12, 200])
def test_truncated_stream(writer_stream, cut):
    whole = _read(writer_stream)[1]
    reader = FragmentReader()
    fragments = reader.feed(writer_stream[: whole[-1].offset + whole[-1].size - cut])  # inside the last mdat
    with pytest.raises(TruncatedStreamError, match="stream ended inside box 'mdat'"):
        reader.close()
    assert fragments == whole[:-1]
    with pytest.raises(ValueError, match="closed"):
        reader.feed(b"")


def test_moof_without_mdat_at_close():
    reader = FragmentReader()
    reader.feed(INIT + moof(1, traf(1, 0, b"", tfdt(0), trun(1))))
    with pytest.raises(TruncatedStreamError, match="without its mdat"):
        reader.close()


def test_annexb_units_become_length_prefixed_samples():
    from models.media.fragments import length_prefixed

    sps, pps = b"\x67\x42\x00\x1e", b"\x68\xce"
    annexb = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps  # a 4-byte start code, then a 3-byte one
    assert length_prefixed(annexb) == b"\0\0\0\x04" + sps + b"\0\0\0\x02" + pps
    assert length_prefixed(b"") == length_prefixed(b"\x67\x42") == b""  # no start code: no unit (was a ValueError)
