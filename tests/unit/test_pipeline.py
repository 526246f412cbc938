"""Text to MP4 end to end (real Piper, real renderer, real x264), decoded back."""

import numpy as np
import pytest

from models.errors import InvalidInput, NoFaceFound, UnsupportedLanguage
from models.media import decode_audio, decode_frames, probe

pytestmark = pytest.mark.unit


def test_text_to_mp4(pipeline, tmp_path):
    out = tmp_path / "hello.mp4"
    result = pipeline.generate("Hello there. This is a test of the whole pipeline.", out)
    t = result.timings
    assert out.exists() and not list(tmp_path.glob("*.part"))
    info = probe(out)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (256, 256)
    assert abs(info["n_frames"] - t.audio_duration_s * 25) <= 1
    assert abs(info["video_duration_s"] - t.audio_duration_s) <= 1 / 25
    assert abs(info["audio_duration_s"] - t.audio_duration_s) <= 1 / 25
    assert info["audio_start_s"] == pytest.approx(0.0, abs=1e-3)
    assert t.tts_ms > 0 and t.avatar_ms > 0 and t.encode_ms > 0 and t.rtf > 0
    assert t.total_ms >= t.tts_ms
    audio, sr, _ = decode_audio(out)
    assert np.abs(audio).max() > 0.1  # speech, not silence


def test_mouth_moves_while_speaking(pipeline, tmp_path):
    out = tmp_path / "talk.mp4"
    pipeline.generate("Mama, papa, open a big apple.", out)
    frames = decode_frames(out).astype(np.float32)
    p = pipeline.avatar(None, pipeline.renderer).portrait
    (x0, y0), (x1, y1) = p.points[[61, 291, 0, 17]].min(0).astype(int), p.points[[61, 291, 0, 17]].max(0).astype(int)
    mouth = frames[:, y0 : y1 + 1, x0 : x1 + 1].mean(axis=(1, 2, 3))
    assert mouth.std() > 2.0  # the mouth region changes over time


def test_options_size_fps_and_speed(pipeline, tmp_path):
    slow = pipeline.generate("One two three four.", tmp_path / "a.mp4", size=128, fps=10, options=None)
    info = probe(tmp_path / "a.mp4")
    assert info["width"] == 128 and abs(info["fps"] - 10) < 1e-6
    from models.tts import SynthesisOptions

    fast = pipeline.generate(
        "One two three four.", tmp_path / "b.mp4", size=128, fps=10, options=SynthesisOptions(speed=2)
    )
    assert fast.timings.audio_duration_s < 0.75 * slow.timings.audio_duration_s


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"text": ""}, InvalidInput),
        ({"text": "x" * 3000}, InvalidInput),
        ({"text": "Hola", "language": "xx"}, UnsupportedLanguage),
        ({"text": "Hi", "size": 99}, InvalidInput),
        ({"text": "Hi", "fps": 500}, InvalidInput),
    ],
)
def test_bad_input_leaves_nothing_behind(pipeline, tmp_path, kwargs, error):
    text = kwargs.pop("text")
    with pytest.raises(error):
        pipeline.generate(text, tmp_path / "x.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_photo_without_face(pipeline, tmp_path):
    grey = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceFound):
        pipeline.generate("Hi", tmp_path / "x.mp4", image=grey)
    assert list(tmp_path.iterdir()) == []


def test_only_the_first_piece_is_urgent(pipeline, tmp_path, monkeypatch):
    # nothing renders before the first piece, so it may take every core; the rest is made beside the rendering
    from models.tts import SynthesisOptions

    real, asked = pipeline.tts, []

    class Recording:
        def __getattr__(self, name):
            return getattr(real, name)

        def synthesize_stream(self, text, language="en", voice=None, options=None):
            asked.append((text, options.urgent, options.speed))
            return real.synthesize_stream(text, language, voice, options)

    monkeypatch.setattr(pipeline, "tts", Recording())
    text = "One sentence here. And a second one. A third."
    result = pipeline.generate(text, tmp_path / "a.mp4", size=128, fps=10, options=SynthesisOptions(speed=1.5))
    assert asked == [("One sentence here.", True, 1.5), ("And a second one.", False, 1.5), ("A third.", False, 1.5)]
    assert [c.text for c in result.speech.chunks] == ["One sentence here.", "And a second one.", "A third."]
