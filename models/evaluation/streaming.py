"""What a client measures on a live fragmented-MP4 stream: time to the first playable fragment, and how playback
would go (start-up delay, stalls) if a player such as a browser with Media Source Extensions played it as it came.

    t0 = time.perf_counter()
    with httpx.stream("POST", url, json={"text": text}) as r:
        report = measure_stream(r.iter_bytes(), t0)
    print(report.ttff_ms, report.stalls, report.stall_ms)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from models.media.boxes import Fragment, FragmentReader, TruncatedStreamError

START_BUFFER_S = 0.2  # media buffered before playback starts (and resumes after a stall)
_EPS = 1e-9


@dataclass
class StreamReport:
    """Times in ms from t0 (the request), media times in s."""

    ttff_ms: float | None  # first complete fragment whose video starts with a keyframe (None: never)
    fragments: int
    bytes: int
    media_duration_s: float  # the furthest video end (audio's where there is no video)
    total_ms: float  # until the last byte (end of the iteration)
    stalls: int
    stall_ms: float
    playing_ms: float | None  # when playback would start (None: nothing playable arrived)
    realtime_factor: float | None  # media duration / time to the last fragment (> 1: faster than real time)
    first_byte_ms: float | None = None
    init_ms: float | None = None  # when the init segment (moov) was complete
    complete: bool = True  # False: the stream stopped inside a box or after a moof without its mdat
    arrivals: list[tuple[float, float]] = field(default_factory=list, repr=False)  # (s since t0, buffered end s)

    def to_dict(self, arrivals: bool = False) -> dict:
        d = asdict(self)
        if not arrivals:
            d.pop("arrivals")
        return d


class _Buffered:
    """The buffered media end as MSE reports it: the furthest end common to every track seen in the moov."""

    def __init__(self) -> None:
        self.ends: dict[str, float] = {}

    def add(self, fragment: Fragment, kinds: set[str]) -> float:
        for kind in ("video", "audio"):
            end = fragment.end_s(kind)
            if end is not None:
                self.ends[kind] = max(self.ends.get(kind, 0.0), end)
        wanted = kinds & {"video", "audio"} or set(self.ends)
        return min((self.ends.get(k, 0.0) for k in wanted), default=0.0)


class _Reading:
    """A stream read as it arrives: when its first byte, its init segment and its first fragment that starts
    with a keyframe came, and the buffered media end after each fragment."""

    def __init__(self) -> None:
        self.reader, self.buffered = FragmentReader(), _Buffered()
        self.arrivals: list[tuple[float, float]] = []
        self.bytes, self.complete = 0, True
        self.first_byte: float | None = None
        self.init: float | None = None
        self.ttff: float | None = None

    def feed(self, chunk: bytes, now: float) -> None:
        self.first_byte = now if self.first_byte is None else self.first_byte
        self.bytes += len(chunk)
        self._take(self.reader.feed(chunk), now)
        self.init = now if self.init is None and self.reader.init_complete else self.init

    def close(self, now: float) -> None:
        try:
            self._take(self.reader.close(), now)
        except TruncatedStreamError:
            self.complete = False

    def _take(self, fragments: list[Fragment], now: float) -> None:
        kinds = {t.kind for t in self.reader.tracks.values()}
        for f in fragments:
            if self.ttff is None and f.video_starts_with_keyframe:
                self.ttff = now
            self.arrivals.append((now, self.buffered.add(f, kinds)))


def measure_stream(
    chunks: Iterable[bytes],
    t0: float,
    clock: Callable[[], float] = time.perf_counter,
    start_buffer_s: float = START_BUFFER_S,
) -> StreamReport:
    """Read a stream to its end, noting when each fragment completes; a chunk's fragments all arrive when it
    does. Malformed bytes raise ValueError; a stream cut short gives `complete=False`."""
    read = _Reading()
    for chunk in chunks:
        if chunk:
            read.feed(chunk, clock() - t0)
    end = clock() - t0
    read.close(end)
    play = simulate_playback(read.arrivals, start_buffer_s)
    ends = read.buffered.ends
    return StreamReport(
        ttff_ms=_ms(read.ttff),
        fragments=len(read.arrivals),
        bytes=read.bytes,
        media_duration_s=ends.get("video", ends.get("audio", 0.0)),
        total_ms=end * 1000,
        stalls=play["stalls"],
        stall_ms=play["stall_s"] * 1000,
        playing_ms=_ms(play["playing_at_s"]),
        realtime_factor=play["realtime_factor"],
        first_byte_ms=_ms(read.first_byte),
        init_ms=_ms(read.init),
        complete=read.complete,
        arrivals=read.arrivals,
    )


def simulate_playback(arrivals: list[tuple[float, float]], start_buffer_s: float = START_BUFFER_S) -> dict:
    """Play a stream at 1x as its media arrives. `arrivals`: (wall time in s since t0, buffered media end in s
    after that arrival), in order of arrival; the media starts at 0 and the stream ends with the last arrival.

    Playback starts once `start_buffer_s` of media is buffered ahead of the play head (or the stream has ended);
    a stall is the play head reaching the buffered end before the stream has ended, and playback resumes once
    `start_buffer_s` more is buffered (or the stream has ended). Returns playing_at_s (None: no arrivals),
    stalls, stall_s (total stalled time, not counting the start-up wait), ended_at_s (when the play head reaches
    the end), media_s, and realtime_factor = media duration / time of the last arrival."""
    pos, buffered, now = 0.0, 0.0, 0.0
    playing, playing_at, stalled_at = False, None, None
    stalls, stall_s = 0, 0.0
    for i, (t, end) in enumerate(arrivals):
        if playing:
            run_out = now + (buffered - pos)
            if run_out < t - _EPS:  # the play head catches up with the buffer before this arrival: a stall
                pos, playing, stalled_at, stalls = buffered, False, run_out, stalls + 1
            else:
                pos += t - now
        now, buffered = t, max(buffered, end)
        if not playing and (buffered - pos >= start_buffer_s - _EPS or i == len(arrivals) - 1):
            playing = True
            if playing_at is None:
                playing_at = t
            else:
                stall_s += t - stalled_at
    last = arrivals[-1][0] if arrivals else None
    return {
        "playing_at_s": playing_at,
        "stalls": stalls,
        "stall_s": stall_s,
        "ended_at_s": now + (buffered - pos) if arrivals else None,
        "media_s": buffered,
        "realtime_factor": buffered / last if last else None,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
