"""Audio in, in process: uploads decoded in bounds (models/media/decode.py), a clip cut at its pauses and its
phonemes shared out (models/animate.py), and `Pipeline.animate` -> an MP4 whose mouth follows the audio, with
bad input refused before anything is written."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from models.animate import cut_points, split_phonemes
from models.errors import InvalidInput, PayloadTooLarge, UnsupportedLanguage
from models.evaluation.agreement import compare
from models.media import decode_audio, probe
from models.media.audio import encode_audio
from models.media.decode import decode_audio_file
from models.tts import create_engine, synthesize
from models.tts.base import Phoneme

pytestmark = pytest.mark.unit
TEXT = "Maybe both of them will bring a map. Well, look at the moon!"


@pytest.fixture(scope="module")
def speech():
    return synthesize(create_engine("piper"), TEXT)


def _m4a(audio: np.ndarray, rate: int, fmt: str = "mp4", codec: str = "aac") -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        frame = av.AudioFrame.from_ndarray(audio[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac", "m4a", "webm"])
def test_every_format_a_user_has_decodes(speech, fmt):
    if fmt == "m4a":
        data = _m4a(speech.audio, speech.sample_rate)
    elif fmt == "webm":
        data = _m4a(np.interp(np.arange(0, len(speech.audio), speech.sample_rate / 48000),
                              np.arange(len(speech.audio)), speech.audio), 48000, "webm", "libopus")  # fmt: skip
    else:
        data = encode_audio(speech.audio, speech.sample_rate, fmt)[0]
    audio, rate = decode_audio_file(data, max_seconds=60)
    assert abs(len(audio) / rate - speech.duration) < 0.1 and audio.dtype == np.float32


def test_what_is_not_usable_audio_is_refused_with_what_is_allowed(speech):
    for data, message in [(b"", "empty"), (b"%PDF-1.4 not audio at all" * 40, "not readable audio"),
                          (encode_audio(np.zeros(16000, np.float32), 16000, "wav")[0], "silent"),
                          (encode_audio(speech.audio[:800], speech.sample_rate, "wav")[0], "long")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=message) as err:
            decode_audio_file(data, max_seconds=60)
        assert err.value.field == "audio" and err.value.allowed


def test_too_long_is_refused_from_the_header_before_decoding():
    """Ten minutes of silent Opus is ~60 KB; its length is read from the container, nothing is decoded."""
    long_quiet = encode_audio(np.zeros(16000 * 600, np.float32), 16000, "opus")[0]
    assert len(long_quiet) < 200_000
    t = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="600.0 s long") as err:
        decode_audio_file(long_quiet, max_seconds=30)
    assert time.perf_counter() - t < 0.2 and err.value.status == 413


def test_a_clip_is_cut_at_its_pauses_and_its_phonemes_shared_out(speech):
    cuts = cut_points(speech.audio, speech.sample_rate, max_s=2.0, first_s=1.0)
    lengths = np.diff([0, *cuts, len(speech.audio)])
    assert cuts and cuts[0] <= speech.sample_rate and lengths.max() <= 2 * speech.sample_rate
    quiet = [np.sqrt(np.mean(speech.audio[c - 80 : c + 80] ** 2)) for c in cuts]
    assert np.median(quiet) < 0.2 * np.sqrt(np.mean(speech.audio**2))  # at quiet places, not inside a vowel
    shares = split_phonemes([Phoneme("a", 0.0, 1.5), Phoneme("m", 1.5, 1.0)], [1.0, 2.0], 2.5)
    assert [[(p.symbol, p.start, p.duration) for p in s] for s in shares] == [
        [("a", 0.0, 1.0)], [("a", 0.0, 0.5), ("m", 0.5, 0.5)], [("m", 0.0, 0.5)]]  # fmt: skip


def test_animate_makes_the_mp4_with_the_mouth_of_the_text_path(pipeline, speech, tmp_path):
    out = tmp_path / "animated.mp4"
    result = pipeline.animate(speech.audio, speech.sample_rate, out, text=TEXT, fps=25, size=256)
    info = probe(out)
    assert (info["video_codec"], info["audio_codec"], info["n_frames"]) == ("h264", "aac", result.timings.n_frames)
    assert abs(info["audio_duration_s"] - speech.duration) < 0.08
    audio, sr, _ = decode_audio(out)  # the client's audio is what plays
    n = min(len(audio), int(speech.duration * sr)) - sr // 10
    ref = np.interp(np.arange(n) * speech.sample_rate / sr, np.arange(len(speech.audio)), speech.audio)
    assert np.corrcoef(np.abs(audio[:n]) > 0.05, np.abs(ref) > 0.05)[0, 1] > 0.5
    assert result.timings.mouth == "aligned" and result.timings.align_ms > 0
    ours = compare(speech.phonemes, result.speech.phonemes, speech.audio, speech.sample_rate)
    loud = compare(speech.phonemes, None, speech.audio, speech.sample_rate)
    assert ours["jaw_corr"] > 0.55 and ours["jaw_corr"] > loud["jaw_corr"] + 0.15 and ours["closure_recall"] >= 0.8
    assert not list(tmp_path.glob("*.part"))


def test_animate_refuses_bad_input_before_writing(pipeline, speech, tmp_path):
    out = tmp_path / "never.mp4"
    with pytest.raises(UnsupportedLanguage):
        pipeline.animate(speech.audio, speech.sample_rate, out, language="xx")
    with pytest.raises(InvalidInput, match="not written as"):
        pipeline.animate(speech.audio, speech.sample_rate, out, text="这不是英语", language="en")
    with pytest.raises(InvalidInput):
        pipeline.animate(speech.audio, speech.sample_rate, out, size=99)
    assert not out.exists() and not list(tmp_path.iterdir())
