"""Offline languages: en (Piper), es and zh-cn (eSpeak NG), routed by language; voice/language errors."""

import numpy as np
import pytest

from models.avatar.controls import viseme
from models.errors import InvalidInput, NotFound, UnsupportedLanguage
from models.media import decode_audio, probe
from models.tts import create_engine, synthesize

pytestmark = pytest.mark.unit

ROUTES = {"en": "piper", "es": "espeak", "zh-cn": "espeak"}


@pytest.fixture(scope="module")
def router():
    return create_engine("auto", routes=ROUTES)


@pytest.mark.parametrize(
    "language,text",
    [("es", "Hola, me llamo Pablo. ¿Cómo estás?"), ("zh-cn", "你好，我叫小明。今天天气很好。"), ("zh", "谢谢。")],
)
def test_espeak_speaks_with_exact_timings(router, language, text):
    speech = synthesize(router, text, language)
    assert speech.sample_rate == 22050 and speech.duration > 0.4
    assert np.sqrt(np.mean(speech.audio**2)) > 0.02  # not silent
    for chunk in speech.chunks:
        total = sum(round(p.duration * chunk.sample_rate) for p in chunk.phonemes)
        assert abs(total - len(chunk.audio)) <= len(chunk.phonemes)  # spans tile the chunk
    vowels = [p for p in speech.phonemes if viseme(p.symbol) and viseme(p.symbol)[0] >= 0.45]
    assert vowels, "eSpeak phonemes map to open-mouth visemes"


def test_routing_and_voices(router):
    assert set(router.languages) == {"en", "es", "zh-cn"}
    assert router.engine_for("en", None).name == "piper" and router.engine_for("es", "default").name == "espeak"
    default = router.voices()[0]
    assert default.id == "default" and set(default.languages) == {"en", "es", "zh-cn"}


def test_language_and_voice_errors(router):
    with pytest.raises(UnsupportedLanguage) as err:
        router.engine_for("fr", None)
    assert sorted(err.value.allowed) == ["en", "es", "zh-cn"]
    with pytest.raises(NotFound) as err:
        router.engine_for("en", "nobody")
    assert "default" in err.value.allowed
    with pytest.raises(InvalidInput):
        create_engine("espeak", languages=("tlh",))


def test_speed_changes_espeak_duration(router):
    from models.tts import SynthesisOptions

    slow = synthesize(router, "Uno, dos, tres, cuatro, cinco.", "es")
    fast = synthesize(router, "Uno, dos, tres, cuatro, cinco.", "es", options=SynthesisOptions(speed=2.0))
    assert fast.duration < 0.7 * slow.duration


@pytest.mark.parametrize("language,text", [("es", "Buenos días a todos."), ("zh-cn", "早上好，大家好。")])
def test_cli_other_languages_make_a_video(tmp_path, monkeypatch, capsys, language, text):
    from models.cli import main

    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / f"{language}.mp4"
    assert main(["generate", text, "-o", str(out), "--language", language, "--size", "128", "-q"]) == 0
    info = probe(out)
    assert info["video_codec"] == "h264" and info["n_frames"] > 10
    audio, _, _ = decode_audio(out)
    assert np.abs(audio).max() > 0.1
