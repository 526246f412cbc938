"""Piper engine (the bundled voice), text helpers and the engine registry."""

import numpy as np
import pytest

from models.errors import EngineUnavailable, InvalidInput, UnsupportedLanguage
from models.text import normalize_language, normalize_text, split_sentences
from models.tts import Speech, SynthesisOptions, available_engines, create_engine, synthesize

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def engine():
    return create_engine("piper")


def test_two_sentences_two_chunks(engine):
    chunks = list(engine.synthesize_stream("Hello world. This is a test."))
    assert len(chunks) == 2
    for c in chunks:
        assert c.sample_rate == 22050 and c.audio.dtype == np.float32
        assert 0.4 < c.duration < 4.0 and np.abs(c.audio).max() > 0.1 and np.abs(c.audio).max() <= 1.0


def test_alignments_sum_exactly_to_the_audio(engine):
    for c in engine.synthesize_stream("The quick brown fox jumps over the lazy dog. Pack my box!"):
        total = sum(round(p.duration * c.sample_rate) for p in c.phonemes)
        assert total == len(c.audio)
        starts = [p.start for p in c.phonemes]
        assert starts == sorted(starts) and starts[0] == 0.0


def test_join_offsets_phoneme_times(engine):
    speech = synthesize(engine, "One. Two.")
    first = speech.chunks[0]
    later = speech.phonemes[len(first.phonemes)]
    assert later.start == pytest.approx(first.duration)
    assert speech.duration == pytest.approx(sum(c.duration for c in speech.chunks))
    with pytest.raises(InvalidInput):
        Speech.join([])


def test_speed(engine):
    slow = synthesize(engine, "Counting one two three four five.")
    fast = synthesize(engine, "Counting one two three four five.", options=SynthesisOptions(speed=2.0))
    assert fast.duration < 0.7 * slow.duration
    with pytest.raises(InvalidInput, match="speed"):
        SynthesisOptions(speed=10)


def test_errors(engine):
    with pytest.raises(UnsupportedLanguage) as err:
        list(engine.synthesize_stream("Bonjour", language="fr"))
    assert err.value.allowed == ["en"]
    with pytest.raises(InvalidInput, match="voice"):
        list(engine.synthesize_stream("Hi", voice="nobody"))
    with pytest.raises(InvalidInput) as err:
        create_engine("nonexistent")
    assert "piper" in err.value.allowed and "piper" in available_engines()
    with pytest.raises(EngineUnavailable):
        create_engine("piper", model_path="/nonexistent/voice.onnx")


def test_text_helpers():
    assert normalize_text("  Hello \n\t world ", 100) == "Hello world"
    for bad in ("", "   ", "\n"):
        with pytest.raises(InvalidInput, match="empty"):
            normalize_text(bad, 100)
    with pytest.raises(InvalidInput, match="100"):
        normalize_text("x" * 101, 100)
    assert split_sentences("Dr. Smith paid 3.5 dollars. Really? Yes!") == [
        "Dr. Smith paid 3.5 dollars.",
        "Really?",
        "Yes!",
    ]
    assert split_sentences("你好。我很好！") == ["你好。", "我很好！"]
    assert [normalize_language(c) for c in ("zh", "ZH_CN", "en-US", "es-MX", "es")] == [
        "zh-cn",
        "zh-cn",
        "en",
        "es",
        "es",
    ]
