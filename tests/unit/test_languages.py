"""Offline languages: en (Piper), es and zh-cn (eSpeak NG), routed by language; voice/language errors."""

import numpy as np
import pytest

from models.avatar.visemes import viseme
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


def test_espeak_pauses_after_each_sentence(router):
    from models.tts.espeak import CLAUSE_PAUSE_S, SENTENCE_PAUSE_S

    speech = synthesize(router, "Hola, amigo. ¿Qué tal?", "es")
    for chunk in speech.chunks:  # eSpeak ends its audio at the last sound; a speaker pauses there
        last = chunk.phonemes[-1]
        assert last.symbol == "_" and last.duration == pytest.approx(SENTENCE_PAUSE_S, abs=1e-3)
        assert np.abs(chunk.audio[-int(SENTENCE_PAUSE_S * chunk.sample_rate) :]).max() == 0
    (clause,) = router.synthesize_stream("Hola, amigo,", "es")  # a stream's first piece may end at a clause
    assert clause.phonemes[-1].duration == pytest.approx(CLAUSE_PAUSE_S, abs=1e-3)
    from models.tts import SynthesisOptions

    (fast,) = router.synthesize_stream("Hola.", "es", options=SynthesisOptions(speed=2))
    assert fast.phonemes[-1].duration == pytest.approx(SENTENCE_PAUSE_S / 2, abs=1e-3)


def test_an_espeak_stop_owns_the_silence_of_its_closure():
    from models.tts.base import Phoneme
    from models.tts.espeak import _with_closures

    rate = 22050
    t = np.arange(int(0.5 * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    audio[int(0.2 * rate) : int(0.26 * rate)] = 0  # the lips shut: silence, then the release at 0.26 s
    events = [Phoneme("a", 0.0, 0.26), Phoneme("p", 0.26, 0.03), Phoneme("ˈa", 0.29, 0.21)]
    a, p, a2 = _with_closures(events, audio, rate)
    assert p.start == pytest.approx(0.2, abs=0.006) and p.start + p.duration == pytest.approx(0.29)
    assert a.duration == pytest.approx(p.start) and a2 == events[2]  # the spans still tile the audio
    loud = np.full_like(audio, 0.3)  # no closure silence before the event: nothing moves
    assert _with_closures(events, loud, rate) == events
    after_pause = [Phoneme("_", 0.0, 0.26), Phoneme("p", 0.26, 0.03), Phoneme("a", 0.29, 0.21)]
    assert _with_closures(after_pause, audio, rate) == after_pause  # a pause is not a closure


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
