"""Piper engine (the bundled voice and a tiny ONNX stand-in), text helpers and the engine registry."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from models.errors import EngineUnavailable, InvalidInput, NotFound, UnsupportedLanguage
from models.text import normalize_language, normalize_text, split_sentences
from models.tts import Speech, SpeechChunk, SynthesisOptions, available_engines, create_engine, synthesize

pytestmark = pytest.mark.unit

HOP = 256  # samples per frame, in the tiny voice's graph and its config
TINY_IDS = {
    "_": [0],
    "^": [1],
    "$": [2],
    " ": [3],
    ".": [4],
    "h": [5],
    "o": [6],
    "l": [7],
    "a": [8],
    "H": [9],
    "O": [10],
}


@pytest.fixture(scope="module")
def engine():
    return create_engine("piper")


def _samples(phonemes, rate):
    return [round(p.duration * rate) for p in phonemes]


# --- the bundled voice (joe, en_US, 22050 Hz) ---


def test_two_sentences_two_chunks(engine):
    chunks = list(engine.synthesize_stream("Hello world. This is a test."))
    assert [c.text for c in chunks] == ["Hello world.", "This is a test."]
    for c in chunks:
        assert c.sample_rate == engine.sample_rate == 22050 and c.audio.dtype == np.float32
        assert 0.5 < c.duration < 4.0
        assert np.abs(c.audio).max() <= 1.0 and np.sqrt(np.mean(c.audio**2)) > 0.02


def test_alignments_tile_the_audio_exactly(engine):
    text = "The quick brown fox jumps over the lazy dog. Pack my box, with five dozen jugs!"
    for c in engine.synthesize_stream(text, options=SynthesisOptions(speed=1.3)):
        assert sum(_samples(c.phonemes, c.sample_rate)) == len(c.audio)  # exact, not within a sample
        assert c.phonemes[0].start == 0.0 and c.phonemes[0].symbol == "^" and c.phonemes[-1].symbol == "$"
        for a, b in zip(c.phonemes, c.phonemes[1:], strict=False):
            assert b.start == pytest.approx(a.start + a.duration, abs=1e-9)


def test_one_chunk_per_sentence_even_where_espeak_splits(engine):
    # eSpeak ends a sentence at "Dr."; the engine joins its parts so chunks follow our sentences.
    (chunk,) = engine.synthesize_stream("Dr. Smith paid 3.5 dollars.")
    assert chunk.text == "Dr. Smith paid 3.5 dollars."
    assert sum(_samples(chunk.phonemes, chunk.sample_rate)) == len(chunk.audio)


def test_join_offsets_phoneme_times(engine):
    speech = synthesize(engine, "One. Two.", "en-US")
    first, second = speech.chunks
    assert len(speech.audio) == len(first.audio) + len(second.audio)
    assert speech.phonemes[: len(first.phonemes)] == first.phonemes
    shifted = speech.phonemes[len(first.phonemes)]
    assert shifted.start == pytest.approx(first.duration) and shifted.duration == second.phonemes[0].duration
    with pytest.raises(InvalidInput):
        Speech.join([])


def test_join_without_timings_drops_them():
    timed = SpeechChunk(np.zeros(10, np.float32), 100, "a", [])
    untimed = SpeechChunk(np.zeros(5, np.float32), 100, "b", None)
    speech = Speech.join([timed, untimed])
    assert speech.phonemes is None and speech.duration == pytest.approx(0.15)


def test_speed(engine):
    steady = SynthesisOptions(noise_w_scale=0.0)  # no duration noise: the comparison is deterministic
    slow = synthesize(engine, "Counting one two three four five.", options=steady)
    fast = synthesize(engine, "Counting one two three four five.", options=SynthesisOptions(2.0, None, 0.0))
    assert fast.duration < 0.7 * slow.duration  # not 0.5: every phoneme rounds up to whole frames
    for bad in (0.1, 10, math.nan, "fast"):
        with pytest.raises(InvalidInput, match="speed"):
            SynthesisOptions(speed=bad)


def test_warmup_and_voice_names(engine):
    engine.warmup()
    assert [v.id for v in engine.voices()] == ["default"] and engine.voices()[0].languages == ("en",)
    for name in (None, "default", engine.voice_name):
        assert next(engine.synthesize_stream("Hi.", voice=name)).duration > 0


def test_request_errors(engine):
    with pytest.raises(UnsupportedLanguage) as err:
        engine.synthesize_stream("Bonjour", language="fr")
    assert err.value.allowed == ["en"]
    with pytest.raises(NotFound, match="voice") as err:
        engine.synthesize_stream("Hi", voice="nobody")
    assert err.value.allowed == ["default"]
    for empty in ("", "   \n\t"):
        with pytest.raises(InvalidInput, match="empty"):
            engine.synthesize_stream(empty)
    with pytest.raises(InvalidInput, match="nothing to say"):
        synthesize(engine, "...")


def test_registry_and_load_errors(tmp_path):
    assert "piper" in available_engines()
    with pytest.raises(InvalidInput) as err:
        create_engine("nonexistent")
    assert "piper" in err.value.allowed
    with pytest.raises(EngineUnavailable, match="voice.onnx"):
        create_engine("piper", model_path=tmp_path / "voice.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    (tmp_path / "junk.onnx.json").write_text("{not json")
    with pytest.raises(EngineUnavailable, match="config"):
        create_engine("piper", model_path=tmp_path / "junk.onnx")


def test_importing_the_package_is_cheap():
    code = "import sys, models.tts; print(sorted({'piper', 'onnxruntime', 'onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- a tiny ONNX voice: Piper's inputs and outputs, silence of a known length per phoneme id ---


def _tiny_graph(with_ceil: bool):
    """frames(id) = ceil(((id % 3) + 1) * length_scale); audio = zeros(sum(frames) * HOP) shaped [1, 1, 1, T].

    The Ceil node is what Piper's alignment patch exposes, as in real VITS exports.
    """
    from onnx import TensorProto, helper

    def const(name, value, dtype=TensorProto.INT64, dims=()):
        values = value if isinstance(value, list) else [value]
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, dims, values))

    nodes = [
        const("three", 3),
        const("one", 1.0, TensorProto.FLOAT),
        const("hop", float(HOP), TensorProto.FLOAT),
        const("at1", 1),
        const("vec1", [1], dims=[1]),
        const("lead", [1, 1, 1], dims=[3]),
        helper.make_node("Mod", ["input", "three"], ["mod"]),
        helper.make_node("Cast", ["mod"], ["mod_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["mod_f", "one"], ["w"]),
        helper.make_node("Gather", ["scales", "at1"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["w", "length_scale"], ["w_scaled"]),
        helper.make_node("Ceil" if with_ceil else "Identity", ["w_scaled"], ["w_ceil"]),
        helper.make_node("ReduceSum", ["w_ceil"], ["frames"], keepdims=0),
        helper.make_node("Mul", ["frames", "hop"], ["samples_f"]),
        helper.make_node("Cast", ["samples_f"], ["samples"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["samples", "vec1"], ["samples_1"]),
        helper.make_node("Concat", ["lead", "samples_1"], ["shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["output"],
            value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0]),
        ),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, None])]
    graph = helper.make_graph(nodes, "tiny_piper", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _tiny_voice(folder, name="tiny.onnx", with_ceil=True):
    import onnx

    model = folder / name
    onnx.save(_tiny_graph(with_ceil), str(model))
    config = {
        "audio": {"sample_rate": 16000},
        "espeak": {"voice": "es"},
        "language": {"code": "es_MX"},
        "phoneme_type": "text",  # phonemes = characters: the ids are known without eSpeak
        "num_symbols": len(TINY_IDS),
        "num_speakers": 1,
        "phoneme_id_map": TINY_IDS,
    }
    (folder / f"{name}.json").write_text(json.dumps(config))
    return model


def _expected(sentence, length_scale=1.0):
    """Samples per phoneme as Piper groups them: each phoneme with the pad after it; "$" alone."""
    symbols = ["^", *sentence, "$"]
    per_id = [math.ceil(((i % 3) + 1) * length_scale) * HOP for s in symbols for i in TINY_IDS[s]]
    pad = [math.ceil(((i % 3) + 1) * length_scale) * HOP for i in TINY_IDS["_"]][0]
    return symbols, [n + (pad if s != "$" else 0) for s, n in zip(symbols, per_id, strict=True)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return create_engine("piper", model_path=_tiny_voice(tmp_path_factory.mktemp("tiny")))


def test_tiny_voice_exact_sample_counts(tiny):
    assert (tiny.sample_rate, tiny.languages, tiny.has_alignments) == (16000, ("es",), True)
    chunks = list(tiny.synthesize_stream("Hola. Ola hola.", language="es-MX", voice="tiny"))
    assert [c.text for c in chunks] == ["Hola.", "Ola hola."]
    for c in chunks:
        symbols, samples = _expected(c.text)
        assert [p.symbol for p in c.phonemes] == symbols
        assert _samples(c.phonemes, 16000) == samples and len(c.audio) == sum(samples)
        assert c.audio.dtype == np.float32 and not c.audio.any()


@pytest.mark.parametrize("speed", [0.5, 2.0, 3.0])
def test_tiny_voice_speed_is_length_scale(tiny, speed):
    (chunk,) = tiny.synthesize_stream("hola.", "es", options=SynthesisOptions(speed=speed))
    assert _samples(chunk.phonemes, 16000) == _expected("hola.", 1 / speed)[1]


def test_urgent_speech_runs_on_spinning_threads_and_sounds_the_same(engine):
    # two sessions of one model: threads that sleep when idle (beside the renderer), and one per core that spin
    def spins(voice) -> str:
        return voice.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")

    assert (spins(engine.voice), spins(engine.voice_urgent)) == ("0", "1")
    steady = {"noise_scale": 0.0, "noise_w_scale": 0.0}  # no noise: the same input gives the same samples
    calm = synthesize(engine, "Hello there.", options=SynthesisOptions(**steady))
    urgent = synthesize(engine, "Hello there.", options=SynthesisOptions(**steady, urgent=True))
    np.testing.assert_allclose(urgent.audio, calm.audio, atol=1e-4)
    assert [p.symbol for p in urgent.phonemes] == [p.symbol for p in calm.phonemes]


def test_tiny_voice_without_alignment_output(tmp_path):
    # No Ceil tensor to expose: still speaks, without timings. The config is passed explicitly this time.
    model = _tiny_voice(tmp_path, "plain.onnx", with_ceil=False)
    plain = create_engine("piper", model_path=model, config_path=tmp_path / "plain.onnx.json")
    speech = synthesize(plain, "Hola. Hola.", "es")
    assert not plain.has_alignments and speech.phonemes is None
    assert [c.phonemes for c in speech.chunks] == [None, None]
    assert len(speech.audio) == 2 * sum(_expected("Hola.")[1])


def test_tiny_voice_missing_config(tmp_path):
    model = _tiny_voice(tmp_path)
    (tmp_path / "tiny.onnx.json").unlink()
    with pytest.raises(EngineUnavailable, match="tiny.onnx.json"):
        create_engine("piper", model_path=str(model))


# --- text helpers ---


def test_normalize_text():
    assert normalize_text("  Hello \n\t world ", 100) == "Hello world"
    assert normalize_text("cafe\u0301\x00", 100) == "café"  # NFC; control characters dropped
    for bad in ("", "   ", "\n"):
        with pytest.raises(InvalidInput, match="empty") as err:
            normalize_text(bad, 100)
        assert err.value.field == "text"
    with pytest.raises(InvalidInput, match="100"):
        normalize_text("x" * 101, 100)
    assert normalize_text("x" * 100, 100) == "x" * 100


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith paid 3.5 dollars. Really? Yes!", ["Dr. Smith paid 3.5 dollars.", "Really?", "Yes!"]),
        (
            "See e.g. Fig. 2 by J. R. R. Tolkien. Then stop.",
            ["See e.g. Fig. 2 by J. R. R. Tolkien.", "Then stop."],
        ),
        ('He said "go." She went... Fine!', ['He said "go."', "She went...", "Fine!"]),
        (
            "Room no. 5 is approx. ten m. wide. ¿Qué tal? ¡Bien!",
            ["Room no. 5 is approx. ten m. wide.", "¿Qué tal?", "¡Bien!"],
        ),
        ("你好。我很好！你呢？", ["你好。", "我很好！", "你呢？"]),
        ("他说：“你好。”我笑了。", ["他说：“你好。”", "我笑了。"]),
        ("no final stop", ["no final stop"]),
        ("   ", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_normalize_language():
    codes = ("zh", "zh-Hans", "ZH_CN", "cmn", "en-US", "en_gb", "EN", "es-MX", "es-ES", "es", "fr")
    assert [normalize_language(c) for c in codes] == [
        *["zh-cn"] * 4,
        *["en"] * 3,
        *["es"] * 3,
        "fr",
    ]
    with pytest.raises(InvalidInput):
        normalize_language(" ")
