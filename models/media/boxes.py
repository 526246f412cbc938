"""Incremental reader of a fragmented MP4 (ISO BMFF) as a client receives it: what each fragment holds, when.

Bytes are fed as they arrive (any slicing). The init segment (`ftyp` + `moov` with `mvex`) gives the tracks;
every complete `moof` + `mdat` pair comes back as a `Fragment`: per track its decode start, sample count,
duration and whether it opens with a sync sample (for video: a keyframe, where a decoder can start).
Only `moov` and `moof` are held in memory; `mdat` and other boxes are counted past as they stream by.

    reader = FragmentReader()
    for chunk in response.iter_bytes():
        for fragment in reader.feed(chunk):
            print(fragment.sequence_number, fragment.start_s("video"), fragment.video_starts_with_keyframe)
    reader.close()
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.media.mp4_parse import U32, U64, Track, TrackFragment, box_name, parse_moof, parse_moov

MAX_PARSED_BOX = 64 << 20  # a moov or moof larger than this is not a stream we can read
PARSED = {b"moov", b"moof"}  # kept whole and parsed; everything else is skipped as it streams by
TOP_LEVEL = {b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"sidx", b"uuid", b"pdin", b"meta",
             b"wide", b"emsg", b"prft", b"mfra", b"ssix", b"udta"}  # fmt: skip


class TruncatedStreamError(ValueError):
    """The stream ended inside a box, or with a `moof` whose `mdat` never came."""


@dataclass(frozen=True)
class Fragment:
    """A complete `moof` + `mdat` pair: `offset` is where its moof starts in the stream, `size` covers both."""

    sequence_number: int
    offset: int
    size: int
    tracks: tuple[TrackFragment, ...]

    def track(self, kind: str) -> TrackFragment | None:
        """The first track of this kind ('video', 'audio') that has samples here, else None."""
        return next((t for t in self.tracks if t.kind == kind and t.sample_count), None)

    def start_s(self, kind: str = "video") -> float | None:
        t = self.track(kind)
        return t.start_s if t else None

    def end_s(self, kind: str = "video") -> float | None:
        t = self.track(kind)
        return t.end_s if t else None

    @property
    def video_starts_with_keyframe(self) -> bool:
        t = self.track("video")
        return bool(t and t.starts_with_sync)


@dataclass
class _Box:
    """The top-level box being received."""

    type: bytes
    offset: int  # in the stream
    header: int
    size: int | None  # None: runs to the end of the stream (size field 0)
    data: bytearray = field(default_factory=bytearray)  # the payload, for PARSED boxes only
    received: int = 0  # payload bytes so far

    @property
    def complete(self) -> bool:
        return self.size is not None and self.header + self.received >= self.size


class FragmentReader:
    """Feed it the bytes of a fragmented MP4 as they arrive; get back each fragment once it is complete."""

    def __init__(self) -> None:
        self.tracks: dict[int, Track] = {}
        self.init_complete = False
        self.position = 0  # bytes consumed (header bytes of an unfinished box are still buffered)
        self._pending = bytearray()  # an unfinished box header
        self._box: _Box | None = None
        self._moof: tuple[int, int, tuple[TrackFragment, ...]] | None = None  # offset, sequence, tracks
        self._next_decode: dict[int, int] = {}  # per track: where its last fragment ended (no tfdt)
        self._boxes = 0
        self._closed = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Fragment]:
        """Take the next bytes of the stream; returns the fragments they complete (possibly none)."""
        if self._closed:
            raise ValueError("FragmentReader is closed")
        out: list[Fragment] = []
        view, at = memoryview(data).cast("B"), 0
        while at < len(view):
            if self._box is None:
                at = self._read_header(view, at)
                if self._box is None:
                    break
            else:
                at = self._read_payload(view, at)
            if self._box is not None and self._box.complete:
                self._finish(self._box, out)
        return out

    def close(self) -> list[Fragment]:
        """End of stream: finishes a box that runs to the end (size 0); raises TruncatedStreamError if the
        stream stopped inside a box or after a moof without its mdat."""
        if self._closed:
            return []
        self._closed = True
        out: list[Fragment] = []
        box = self._box
        if box is not None and box.size is None:
            box.size = box.header + box.received
            self._finish(box, out)
        elif box is not None:
            got = box.header + box.received
            raise TruncatedStreamError(f"stream ended inside box '{box_name(box.type)}' ({got} of {box.size} bytes)")
        elif self._pending:
            raise TruncatedStreamError(f"stream ended inside a box header ({len(self._pending)} bytes)")
        if self._moof is not None:
            raise TruncatedStreamError(f"stream ended after moof #{self._moof[1]} without its mdat")
        return out

    # -- top-level boxes -------------------------------------------------------------------------------------

    def _read_header(self, view: memoryview, at: int) -> int:
        """Buffer header bytes (8, or 16 with a 64-bit size) until the whole header is in; then start the box."""
        pending = self._pending
        while at < len(view):
            need = _header_size(pending) if len(pending) >= 8 else 8
            if len(pending) == need:
                break
            take = min(need - len(pending), len(view) - at)
            pending += view[at : at + take]
            at += take
        if len(pending) >= 8 and len(pending) == _header_size(pending):
            self._start_box(bytes(pending))
            pending.clear()
        return at

    def _start_box(self, header: bytes) -> None:
        size, kind = U32.unpack_from(header)[0], header[4:8]
        if len(header) == 16:
            size = U64.unpack_from(header, 8)[0]
        if self._boxes == 0 and kind not in TOP_LEVEL:
            raise ValueError(f"not an ISO BMFF (MP4) stream: it starts with {header[:8]!r}")
        if (size != 0 or len(header) == 16) and size < len(header):
            raise ValueError(f"box '{box_name(kind)}' at byte {self.position} has size {size} < its header")
        if kind in PARSED and size > MAX_PARSED_BOX:
            raise ValueError(f"box '{box_name(kind)}' at byte {self.position} is too large ({size} bytes)")
        self._box = _Box(kind, self.position, len(header), size or None)
        self._boxes += 1
        self.position += len(header)

    def _read_payload(self, view: memoryview, at: int) -> int:
        box = self._box
        assert box is not None
        left = len(view) - at if box.size is None else box.size - box.header - box.received
        take = min(left, len(view) - at)
        if box.type in PARSED:
            if box.size is None and box.received + take > MAX_PARSED_BOX:
                raise ValueError(f"box '{box_name(box.type)}' at byte {box.offset} is too large")
            box.data += view[at : at + take]
        box.received += take
        self.position += take
        return at + take

    def _finish(self, box: _Box, out: list[Fragment]) -> None:
        self._box = None
        if box.type == b"moov":
            self._on_moov(bytes(box.data))
        elif box.type == b"moof":
            self._on_moof(bytes(box.data), box.offset)
        elif box.type == b"mdat" and self._moof is not None:
            offset, sequence, tracks = self._moof
            out.append(Fragment(sequence, offset, box.offset + box.header + box.received - offset, tracks))
            self._moof = None

    def _on_moov(self, payload: bytes) -> None:
        if self.init_complete:
            raise ValueError("a second moov in the stream")
        self.tracks = parse_moov(payload)
        self.init_complete = True

    def _on_moof(self, payload: bytes, offset: int) -> None:
        if not self.init_complete:
            raise ValueError(f"moof at byte {offset} before the moov (no init segment)")
        if self._moof is not None:
            raise ValueError(f"moof at byte {offset} follows moof #{self._moof[1]} without an mdat between")
        sequence, tracks = parse_moof(payload, self.tracks, self._next_decode)
        for t in tracks:
            self._next_decode[t.track_id] = t.base_decode_time + t.duration
        self._moof = (offset, sequence, tracks)


def _header_size(header: bytes | bytearray) -> int:
    return 16 if U32.unpack_from(header)[0] == 1 else 8
