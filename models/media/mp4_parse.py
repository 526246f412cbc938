"""ISO BMFF (MP4) boxes parsed from whole payloads: the tracks of a `moov` (init segment) and what one `moof`
holds per track. models/media/boxes.py feeds them as a stream arrives; models/media/fragments.py reads its own
init segment with them."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

NON_SYNC = 0x10000  # sample_is_non_sync_sample in the sample flags
KINDS = {"vide": "video", "soun": "audio"}
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")


@dataclass(frozen=True)
class Track:
    """One track of the init segment, with its `trex` defaults for the fragments."""

    track_id: int
    handler: str  # 'vide', 'soun', ...
    timescale: int
    default_sample_duration: int = 0
    default_sample_flags: int = 0

    @property
    def kind(self) -> str:
        """'video', 'audio', or the handler type for anything else."""
        return KINDS.get(self.handler, self.handler)


@dataclass(frozen=True)
class TrackFragment:
    """The samples of one track in one fragment; times in the track's timescale and in seconds."""

    track_id: int
    kind: str
    timescale: int
    base_decode_time: int
    duration: int
    sample_count: int
    starts_with_sync: bool

    @property
    def start_s(self) -> float:
        return self.base_decode_time / self.timescale

    @property
    def duration_s(self) -> float:
        return self.duration / self.timescale

    @property
    def end_s(self) -> float:
        return (self.base_decode_time + self.duration) / self.timescale


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """The boxes in data[start:end] as (type, payload start, box end); a size of 0 runs to `end`."""
    end = len(data) if end is None else end
    at = start
    while at < end:
        if end - at < 8:
            raise ValueError(f"{end - at} stray bytes at {at}, too few for a box header")
        size, kind, header = U32.unpack_from(data, at)[0], bytes(data[at + 4 : at + 8]), 8
        if size == 1:
            if end - at < 16:
                raise ValueError(f"box '{box_name(kind)}' at {at}: truncated 64-bit size")
            size, header = U64.unpack_from(data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError(f"box '{box_name(kind)}' at {at} has a bad size {size} (room: {end - at} bytes)")
        yield kind, at + header, at + size
        at += size


def children(data: bytes, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    """Child boxes of a container payload: type -> [(payload start, end)]."""
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, payload, box_end in iter_boxes(data, start, end):
        found.setdefault(kind, []).append((payload, box_end))
    return found


def parse_moov(data: bytes) -> dict[int, Track]:
    """moov payload -> tracks by id (tkhd, mdia/hdlr, mdia/mdhd, mvex/trex)."""
    top = children(data, 0, len(data))
    defaults = {}
    for start, end in top.get(b"mvex", []):
        for payload, box_end in children(data, start, end).get(b"trex", []):
            _need(payload + 24, box_end, "trex")
            track_id, _, duration, _, flags = struct.unpack_from(">5I", data, payload + 4)
            defaults[track_id] = (duration, flags)
    tracks = {}
    for start, end in top.get(b"trak", []):
        track = _parse_trak(data, start, end)
        duration, flags = defaults.get(track.track_id, (0, 0))
        tracks[track.track_id] = Track(track.track_id, track.handler, track.timescale, duration, flags)
    if not tracks:
        raise ValueError("moov has no tracks")
    return tracks


def _parse_trak(data: bytes, start: int, end: int) -> Track:
    trak = children(data, start, end)
    tkhd = _one(trak, b"tkhd", "trak")
    version = data[tkhd[0]]
    track_id = _u32(data, tkhd[0] + (20 if version == 1 else 12), tkhd[1], "tkhd")
    mdia = children(data, *_one(trak, b"mdia", "trak"))
    hdlr = _one(mdia, b"hdlr", "mdia")
    _need(hdlr[0] + 12, hdlr[1], "hdlr")
    handler = bytes(data[hdlr[0] + 8 : hdlr[0] + 12]).decode("latin-1")
    mdhd = _one(mdia, b"mdhd", "mdia")
    timescale = _u32(data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12), mdhd[1], "mdhd")
    if timescale == 0:
        raise ValueError(f"track {track_id} has timescale 0")
    return Track(track_id, handler, timescale)


def parse_moof(
    data: bytes, tracks: dict[int, Track], next_decode: dict[int, int] | None = None
) -> tuple[int, tuple[TrackFragment, ...]]:
    """moof payload -> (sequence number, one TrackFragment per track). Several trafs of a track are merged;
    a traf without tfdt starts where the track's previous fragment ended (`next_decode`)."""
    moof = children(data, 0, len(data))
    mfhd = _one(moof, b"mfhd", "moof")
    sequence = _u32(data, mfhd[0] + 4, mfhd[1], "mfhd")
    merged: dict[int, TrackFragment] = {}
    for start, end in moof.get(b"traf", []):
        frag = _parse_traf(data, start, end, tracks, next_decode or {})
        prev = merged.get(frag.track_id)
        if prev is not None:
            frag = TrackFragment(prev.track_id, prev.kind, prev.timescale, prev.base_decode_time,
                                 prev.duration + frag.duration, prev.sample_count + frag.sample_count,
                                 prev.starts_with_sync if prev.sample_count else frag.starts_with_sync)  # fmt: skip
        merged[frag.track_id] = frag
    return sequence, tuple(merged[k] for k in sorted(merged))


def _parse_traf(
    data: bytes, start: int, end: int, tracks: dict[int, Track], next_decode: dict[int, int]
) -> TrackFragment:
    traf = children(data, start, end)
    tfhd = _one(traf, b"tfhd", "traf")
    track_id, default_duration, default_flags = _parse_tfhd(data, *tfhd)
    track = tracks.get(track_id)
    if track is None:
        raise ValueError(f"traf for track {track_id}, which the moov does not have")
    duration = track.default_sample_duration if default_duration is None else default_duration
    flags = track.default_sample_flags if default_flags is None else default_flags
    base = next_decode.get(track_id, 0)
    if b"tfdt" in traf:
        payload, box_end = traf[b"tfdt"][0]
        long = data[payload] == 1
        _need(payload + (12 if long else 8), box_end, "tfdt")
        base = (U64 if long else U32).unpack_from(data, payload + 4)[0]
    total, count, first_flags = 0, 0, None
    for payload, box_end in traf.get(b"trun", []):
        run_total, run_count, run_flags = _parse_trun(data, payload, box_end, duration, flags)
        total, count = total + run_total, count + run_count
        first_flags = run_flags if first_flags is None and run_count else first_flags
    sync = first_flags is not None and not first_flags & NON_SYNC
    return TrackFragment(track_id, track.kind, track.timescale, base, total, count, sync)


def _parse_tfhd(data: bytes, start: int, end: int) -> tuple[int, int | None, int | None]:
    """-> (track id, default sample duration, default sample flags); None where the tfhd has none."""
    flags = _u32(data, start, end, "tfhd") & 0xFFFFFF
    track_id = _u32(data, start + 4, end, "tfhd")
    at = start + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
    duration = sample_flags = None
    if flags & 0x8:
        duration, at = _u32(data, at, end, "tfhd"), at + 4
    if flags & 0x10:
        at += 4
    if flags & 0x20:
        sample_flags = _u32(data, at, end, "tfhd")
    return track_id, duration, sample_flags


def _parse_trun(data: bytes, start: int, end: int, duration: int, flags: int) -> tuple[int, int, int]:
    """-> (total duration, sample count, flags of the first sample)."""
    tr_flags = _u32(data, start, end, "trun") & 0xFFFFFF
    count = _u32(data, start + 4, end, "trun")
    at = start + 8 + (4 if tr_flags & 0x1 else 0)
    first_flags = None
    if tr_flags & 0x4:
        first_flags, at = _u32(data, at, end, "trun"), at + 4
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if tr_flags & bit]
    _need(at + 4 * len(fields) * count, end, f"trun with {count} samples")
    if 0x100 in fields:
        step = 4 * len(fields)
        total = sum(U32.unpack_from(data, at + i * step)[0] for i in range(count))
    else:
        total = duration * count
    if first_flags is None:
        has_flags = 0x400 in fields and count
        first_flags = U32.unpack_from(data, at + 4 * fields.index(0x400))[0] if has_flags else flags
    return total, count, first_flags


def _one(boxes: dict[bytes, list[tuple[int, int]]], kind: bytes, parent: str) -> tuple[int, int]:
    if kind not in boxes:
        raise ValueError(f"{parent} has no {kind.decode()} box")
    return boxes[kind][0]


def _u32(data: bytes, at: int, end: int, what: str) -> int:
    _need(at + 4, end, what)
    return U32.unpack_from(data, at)[0]


def _need(upto: int, end: int, what: str) -> None:
    if upto > end:
        raise ValueError(f"{what} box is truncated ({upto - end} bytes short)")


def box_name(kind: bytes) -> str:
    return kind.decode("latin-1")
