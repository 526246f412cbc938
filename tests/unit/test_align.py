"""Audio -> timed phonemes (models/align): each aligner on speech whose true timings are known (Piper's in English,
eSpeak's in Spanish and Mandarin, spoken in another voice variant and speed than the aligner's own rendering), on
the plan-level measures of models/evaluation/agreement.py, loosened for noise from the README's medians."""

from __future__ import annotations

import numpy as np
import pytest

from models.align import AlignedEngine, AudioAligner, checked_language
from models.align.phones import arpabet_phonemes, closing, delay, ipa_to_arpabet, quiet_edges, respell
from models.align.spectral import estimate
from models.errors import InvalidInput, UnsupportedLanguage
from models.evaluation.agreement import closures, compare, onset_error_ms
from models.evaluation.alignment import held_out_speech, load_sentences
from models.tts import create_engine
from models.tts.base import Phoneme, Speech, SpeechChunk

pytestmark = pytest.mark.unit
SENTENCES = load_sentences("configs/align_sentences.yaml")


@pytest.fixture(scope="module")
def aligner():
    a = AudioAligner()
    a.warm()
    return a


@pytest.fixture(scope="module")
def piper():
    return create_engine("piper")


def _speech(piper, language: str, k: int) -> Speech:
    return held_out_speech(piper, language, SENTENCES[language][k], k)[0]


def test_arpabet_becomes_the_viseme_tables_ipa():
    got = arpabet_phonemes([("SIL", 0.0, 0.1), ("M", 0.1, 0.05), ("AY", 0.15, 0.2), ("+NSN+", 0.35, 0.1)])
    assert [p.symbol for p in got] == ["_", "m", "a", "ɪ", "_"]
    assert got[2].duration == pytest.approx(0.12) and got[3].start == pytest.approx(0.27)  # a diphthong, shared
    assert ipa_to_arpabet(["ˈaɪ", "tʃ", "ɚ", "x"]) == ["AY", "CH", "ER", "K"]


def test_respelling_takes_the_texts_stress_and_reduced_vowels():
    phones = [("M", 0.0, 0.1), ("AY", 0.1, 0.2), ("T", 0.3, 0.05), ("AH", 0.35, 0.1)]
    got = respell(phones, ["m", "ˈaɪ", "t", "ə"])
    assert [p.symbol for p in got] == ["m", "ˈa", "ɪ", "t", "ə"]
    assert respell(phones, [])[-1].symbol == "ʌ"  # nothing to match: ARPAbet's own


def test_boundaries_move_later_and_bilabials_keep_their_closure():
    ph = [Phoneme("a", 0.0, 0.2), Phoneme("m", 0.2, 0.12), Phoneme("i", 0.32, 0.2)]
    later = delay(ph, 0.02, 0.04)
    assert [round(p.start, 3) for p in later] == [0.0, 0.24, 0.34] and later[-1].start + later[-1].duration == 0.52
    shut = closing(ph, early=0.01, longest=0.05)
    assert shut[1].start == pytest.approx(0.26) and shut[1].duration == pytest.approx(0.05)
    assert shut[0].duration == pytest.approx(0.26) and shut[2].start == pytest.approx(0.31)


def test_silence_before_and_after_the_sound_is_silence():
    audio = np.concatenate([np.zeros(1600), 0.3 * np.sin(np.arange(3200) / 5), np.zeros(1600)]).astype(np.float32)
    got = quiet_edges([Phoneme("m", 0.0, 0.25), Phoneme("p", 0.25, 0.1), Phoneme("a", 0.35, 0.05)], audio, 16000)
    assert [p.symbol for p in got] == ["_", "m", "p", "_"]  # the a lay in the silence after the sound
    assert got[1].start == pytest.approx(0.1) and got[2].start + got[2].duration == pytest.approx(0.3)


def test_english_with_its_text(aligner, piper):
    speech = _speech(piper, "en", 0)
    found = aligner.align(speech.audio, speech.sample_rate, SENTENCES["en"][0], "en")
    assert (found.source, found.method) == ("aligned", "pocketsphinx")
    m = compare(speech.phonemes, found.phonemes, speech.audio, speech.sample_rate)
    loud = compare(speech.phonemes, None, speech.audio, speech.sample_rate)
    assert m["jaw_corr"] >= 0.7 and m["jaw_corr"] > loud["jaw_corr"] + 0.2  # README medians: 0.83 against 0.40
    assert m["width_corr"] >= 0.7 and m["closure_recall"] >= 0.8 and m["closure_precision"] >= 0.8
    assert m["onset_ms"] <= 40


def test_english_without_text_as_a_file_and_as_a_live_piece(aligner, piper):
    speech = _speech(piper, "en", 2)
    loud = compare(speech.phonemes, None, speech.audio, speech.sample_rate)
    heard = aligner.align(speech.audio, speech.sample_rate, None, "en")
    assert heard.source == "transcribed" and heard.text
    m = compare(speech.phonemes, heard.phonemes, speech.audio, speech.sample_rate)
    assert m["jaw_corr"] >= 0.55 and m["closure_recall"] >= 0.5 and m["jaw_corr"] > loud["jaw_corr"]
    live = aligner.align(speech.audio, speech.sample_rate, None, "en", live=True)
    assert (live.source, live.method) == ("recognized", "pocketsphinx-allphone")
    m = compare(speech.phonemes, live.phonemes, speech.audio, speech.sample_rate)
    assert m["jaw_corr"] >= 0.45 and m["closure_recall"] >= 0.4 and m["width_corr"] > 0.3


@pytest.mark.parametrize("language", ["es", "zh-cn"])
def test_other_languages_with_their_text_by_dtw(aligner, piper, language):
    speech = _speech(piper, language, 0)
    found = aligner.align(speech.audio, speech.sample_rate, SENTENCES[language][0], language)
    assert (found.source, found.method) == ("aligned", "espeak-dtw")
    m = compare(speech.phonemes, found.phonemes, speech.audio, speech.sample_rate)
    assert m["jaw_corr"] >= 0.8 and m["width_corr"] >= 0.8  # README medians: es 0.92, zh-cn 0.98
    assert m["closure_recall"] >= 0.8 and m["closure_precision"] >= 0.8 and m["onset_ms"] <= 40


def test_other_languages_without_text_beat_loudness(aligner, piper):
    """Medians over three Spanish sentences (one sentence alone is noisy: README, Audio in)."""
    got, loud, spectral = [], [], []
    for k in (0, 2, 4):
        s = _speech(piper, "es", k)
        found = aligner.align(s.audio, s.sample_rate, None, "es")
        assert found.source == "recognized"
        got.append(compare(s.phonemes, found.phonemes, s.audio, s.sample_rate))
        loud.append(compare(s.phonemes, None, s.audio, s.sample_rate))
        spectral.append(compare(s.phonemes, estimate(s.audio, s.sample_rate), s.audio, s.sample_rate))

    def median(rows, key):
        return float(np.median([r[key] or 0.0 for r in rows]))

    assert median(got, "jaw_corr") > median(loud, "jaw_corr") and median(loud, "width_corr") == 0
    assert median(got, "width_corr") > 0.4 and median(got, "closure_recall") > 0.2
    assert median(spectral, "width_corr") > 0.3 and median(spectral, "jaw_corr") > median(loud, "jaw_corr") - 0.1


def test_bad_language_or_text_is_refused_before_any_work():
    with pytest.raises(UnsupportedLanguage) as err:
        checked_language(None, "xx")
    assert "zh-cn" in err.value.allowed and "en" in err.value.allowed
    with pytest.raises(InvalidInput, match="not written as 'en'"):
        checked_language("你好，世界", "en")
    with pytest.raises(InvalidInput, match="not written as 'zh-cn'"):
        checked_language("hello world", "zh-cn")
    assert checked_language("Hola, ¿qué tal?", "ES") == "es" and checked_language("42!", "zh") == "zh-cn"


def test_text_that_does_not_fit_the_audio_still_gives_a_mouth(aligner, piper):
    speech = _speech(piper, "en", 1)
    found = aligner.align(speech.audio, speech.sample_rate, "Completely different words about elephants.", "en")
    assert found.phonemes and found.phonemes[-1].start + found.phonemes[-1].duration <= speech.duration + 0.02


class _NoTimings:
    """An engine without phoneme timings (as XTTS): Piper's audio, its timings dropped."""

    name, can_clone, languages = "plain", False, ("en", "xx")

    def __init__(self, piper):
        self.piper, self.sample_rate = piper, piper.sample_rate

    def synthesize_stream(self, text, language="en", voice=None, options=None):
        if language not in self.languages:
            raise UnsupportedLanguage("no", allowed=list(self.languages))
        return (SpeechChunk(c.audio, c.sample_rate, c.text, None) for c in self.piper.synthesize_stream(text, "en"))


def test_an_engine_without_timings_gets_its_own_texts(aligner, piper):
    engine = AlignedEngine(_NoTimings(piper), aligner)
    speech = Speech.join(engine.synthesize_stream("Maybe both of them will bring a map.", "en"))
    assert speech.mouth == "aligned" and speech.phonemes
    assert closures(np.array([0.0]), np.array([0.0]))["closures"] == 0  # (no shut run either side)
    with pytest.raises(UnsupportedLanguage):
        engine.synthesize_stream("Hello.", "fr")  # refused at the call, as the engine itself refuses
    loud = Speech.join(engine.synthesize_stream("Hello there.", "xx"))  # no aligner for xx: loudness, said so
    assert loud.mouth == "loudness" and loud.phonemes is None
    assert engine.name == "plain"  # everything else is the engine's own


def test_onsets_are_matched_within_120_ms():
    ref = np.array([0, 0, 0.5, 0.5, 0, 0, 0, 0.5, 0.5, 0, 0])
    late = np.concatenate([[0.0], ref[:-1]])  # 10 ms later
    assert onset_error_ms(ref, late, 100.0) == pytest.approx(10.0)
    assert onset_error_ms(ref, np.zeros(11), 100.0) is None


def _starts(phonemes) -> np.ndarray:
    return np.array(sorted(p.start for p in phonemes if p.symbol.strip()))


def _near(truth: np.ndarray, got: np.ndarray, within_s: float = 0.05) -> float:
    """The share of true boundaries that have an aligned one within `within_s`."""
    i = np.clip(np.searchsorted(got, truth), 1, len(got) - 1)
    return float((np.minimum(abs(got[i] - truth), abs(got[i - 1] - truth)) < within_s).mean())


@pytest.mark.parametrize("text_known", [True, False])
def test_a_long_clip_is_aligned_in_pieces_as_well_as_at_once(aligner, piper, text_known, monkeypatch):
    """Five minutes aligned at once took 3.7 GB (PocketSphinx) or a quadratic DTW; in pieces, memory is linear.
    Here 45 s of one sentence spoken over and over, against the voice's own timings."""
    from models.align import long

    sentence = "The quick brown fox jumps over the lazy dog, and the bright sun shines over the quiet hills."
    from models.tts import synthesize

    one = synthesize(piper, sentence)
    seconds = len(one.audio) / one.sample_rate
    reps = int(45 / seconds) + 1
    audio = np.tile(one.audio, reps)
    truth = _starts([Phoneme(p.symbol, p.start + k * seconds, p.duration) for k in range(reps)
                     for p in one.phonemes])  # fmt: skip
    text = " ".join([sentence] * reps) if text_known else None
    pieces = aligner.align(audio, one.sample_rate, text, "en")
    monkeypatch.setattr(long, "LONG_S", 1e9)
    whole = aligner.align(audio, one.sample_rate, text, "en")
    assert pieces.source == whole.source == ("aligned" if text_known else "transcribed")
    got, at_once = _near(truth, _starts(pieces.phonemes)), _near(truth, _starts(whole.phonemes))
    assert got > 0.8 and got > at_once - 0.05, (got, at_once)  # measured: 0.91 in pieces, 0.82 at once (60 s)
    assert pieces.phonemes[-1].start > audio.size / one.sample_rate - 5  # the whole clip, to its end


def test_pieces_carry_each_units_text_and_merge_short_ones():
    from models.align.long import pieces, units

    assert units(["a " * 100]) == ["a " * 39 + "a", "a " * 39 + "a", "a " * 19 + "a"]
    rate = 100
    got = pieces([500, 500, 3000], ["one.", "two.", "three.", "four."], 5000, rate)  # 5 s, 0 s, 25 s, 20 s
    assert got == [(0, 500, "one."), (500, 3000, "two. three."), (3000, 5000, "four.")]
    assert pieces([100, 200], ["a.", "b.", "c."], 300, rate) == [(0, 300, "a. b. c.")]  # 3 s in all: one piece
