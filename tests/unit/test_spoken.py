"""Speech that arrives piece by piece (models/spoken.py) and the whole MP4 made from it as it arrives
(models/render_mp4.py render_as_spoken): the plan, the producer thread, and what a failure leaves behind."""

import threading

import numpy as np
import pytest

from models.avatar.controls import MotionConfig, Segment, build_controls
from models.errors import InvalidInput
from models.media import decode_audio, probe
from models.media.audio import rms_envelope
from models.render_mp4 import SpokenJob, render_as_spoken
from models.spoken import Ahead, SpeechPlan
from models.tts.base import Phoneme, SpeechChunk

pytestmark = pytest.mark.unit


def _tone(seconds: float, rate: int, freq: float = 180.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


def _piece(seconds: float, rate: int = 16000, phonemes=True) -> SpeechChunk:
    marks = [Phoneme("a", 0.1, 0.2), Phoneme("m", 0.3, 0.1)] if phonemes else None
    return SpeechChunk(_tone(seconds, rate), rate, "text", marks)


def test_a_plan_made_piece_by_piece_covers_the_audio_frame_for_frame():
    plan = SpeechPlan(25, MotionConfig(seed=1))
    first = len(plan)
    audio, controls = plan.add(_piece(1.0))
    assert first == 0 and len(controls) == 25 and len(audio) == 16000
    audio, controls = plan.add(_piece(0.5, rate=8000))  # resampled to the first piece's rate
    assert len(audio) == 8000 and len(controls) == round(1.5 * 25) - 25 and plan.sample_rate == 16000
    assert plan.add(SpeechChunk(np.zeros(100, np.float32), 16000, "", None))[1] is None  # less than a frame
    assert len(plan) == round(plan.duration * 25) and plan.duration == pytest.approx(1.5 + 100 / 16000)
    # the second piece's phonemes were moved to its place in the whole, in seconds whatever its sample rate
    marks = [(s.symbol, round(s.start, 3), round(s.duration, 3)) for s in plan.controls.segments[2:]]
    assert marks == [("a", 1.1, 0.2), ("m", 1.3, 0.1)]
    env = plan.controls.envelope  # the loudness the plan saw is the whole audio's, but at a join, where the last
    differs = np.flatnonzero(~np.isclose(env, rms_envelope(plan.audio, 16000, 25, len(plan)), atol=1e-6))
    assert set(differs) <= {24, 36, 37}  # frame of a piece could not hear the next one


def test_a_plan_fed_everything_at_once_is_the_whole_plan():
    piece = _piece(2.0)
    plan = SpeechPlan(25, MotionConfig(seed=3))
    _, controls = plan.add(piece)
    env = rms_envelope(piece.audio, piece.sample_rate, 25, 50)
    segments = [Segment(p.symbol, p.start, p.duration) for p in piece.phonemes]
    whole = build_controls(50, 25, env, segments, MotionConfig(seed=3))
    assert np.allclose(controls.jaw, whole.jaw) and np.allclose(controls.head, whole.head)


def test_ahead_hands_over_items_in_order_then_the_producers_error():
    def pieces():
        yield 1
        yield 2
        raise ValueError("engine failed")

    got = []
    with pytest.raises(ValueError, match="engine failed"):
        for item in Ahead(pieces()):
            got.append(item)
    assert got == [1, 2]


def test_ahead_stops_its_thread_when_the_consumer_stops():
    made = []

    def endless():
        while True:
            made.append(1)
            yield len(made)

    it = iter(Ahead(endless(), depth=2))
    assert next(it) == 1
    it.close()  # the consumer gives up (a cancelled request)
    assert not [t for t in threading.enumerate() if t.name == "tts-ahead"]
    assert len(made) <= 5  # it ran at most `depth` ahead, then stopped


def _job(pipeline, tmp_path, name="out.mp4"):
    return SpokenJob(pipeline.avatar(None, pipeline.renderer), MotionConfig(), tmp_path / name)


def test_the_mp4_holds_every_piece_in_order(pipeline, tmp_path):
    pieces = [_piece(0.8, 22050), _piece(1.2, 22050, phonemes=False), _piece(0.6, 22050)]
    speech, times = render_as_spoken(pipeline.renderer, _job(pipeline, tmp_path), pieces, pipeline.settings.video)
    info = probe(tmp_path / "out.mp4")
    assert speech.duration == pytest.approx(2.6) and speech.phonemes is None  # one piece had no timings
    assert info["n_frames"] == times.n_frames == round(2.6 * 25)
    audio, sr, _ = decode_audio(tmp_path / "out.mp4")
    assert abs(len(audio) / sr - 2.6) < 0.05  # encoder delay and padding of the last AAC frame
    assert times.render_s > 0 and times.encode_s > 0 and times.tts_s >= 0


def test_a_failure_between_pieces_leaves_no_file(pipeline, tmp_path):
    def pieces():
        yield _piece(0.8, 22050)
        raise RuntimeError("the engine died")

    with pytest.raises(RuntimeError, match="the engine died"):
        render_as_spoken(pipeline.renderer, _job(pipeline, tmp_path), pieces(), pipeline.settings.video)
    assert list(tmp_path.iterdir()) == []


def test_no_speech_at_all_is_a_clear_error_and_no_file(pipeline, tmp_path):
    with pytest.raises(InvalidInput, match="nothing to say"):
        render_as_spoken(pipeline.renderer, _job(pipeline, tmp_path), [], pipeline.settings.video)
    assert list(tmp_path.iterdir()) == []
