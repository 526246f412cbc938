"""eSpeak NG engine (formant synthesis, ~1000x faster than real time): the offline voice for languages the
bundled Piper voice lacks (Spanish, Mandarin). Robotic but intelligible; phoneme timings come from its events.

The library and its data ship in the `espeakng-loader` wheel; it is driven through ctypes. eSpeak keeps global
state, so calls are serialised by one lock (each call takes milliseconds).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator

import numpy as np

from models.errors import EngineUnavailable, InvalidInput, UnsupportedLanguage
from models.text import normalize_language, split_sentences
from models.tts.base import Phoneme, SpeechChunk, SynthesisOptions, VoiceInfo

VOICES = {"en": "en-us", "es": "es", "zh-cn": "cmn"}  # our language code -> eSpeak voice
_OUTPUT_SYNCHRONOUS, _CHARS_UTF8, _POS_CHARACTER, _RATE = 2, 1, 1, 1
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA, _INIT_DONT_EXIT = 0x0001, 0x0002, 0x8000
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
SENTENCE_PAUSE_S, CLAUSE_PAUSE_S = 0.2, 0.1
STOPS = frozenset("pbtdkgɡcɟ")  # and affricates and aspirated stops, which begin with one ("ts", "tɕ", "ph")
CLOSURE_MAX_S, MIN_PHONEME_S = 0.12, 0.02
_LOCK = threading.Lock()
_STATE: dict = {}


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]  # fmt: skip


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def _library():
    """Load and initialise libespeak-ng once per process; returns (lib, sample_rate, sink)."""
    if "lib" not in _STATE:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EngineUnavailable("the espeak engine needs the espeakng-loader package") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        flags = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), flags)
        if rate <= 0:
            raise EngineUnavailable("eSpeak NG failed to initialise")
        sink: dict = {"audio": [], "events": []}

        @_CALLBACK
        def on_audio(wav, n, events):
            if n > 0:
                sink["audio"].append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while events[i].type != _EVENT_END_OF_LIST:
                if events[i].type == _EVENT_PHONEME:
                    sink["events"].append((events[i].id.decode("utf-8", "replace"), events[i].sample))
                i += 1
            return 0

        lib.espeak_SetSynthCallback(on_audio)
        _STATE.update(lib=lib, rate=rate, sink=sink, callback=on_audio)  # keep the callback alive
    return _STATE["lib"], _STATE["rate"], _STATE["sink"]


class EspeakEngine:
    name = "espeak"
    can_clone = False

    def __init__(self, languages: tuple[str, ...] = ("es", "zh-cn")):
        unknown = [lang for lang in languages if normalize_language(lang) not in VOICES]
        if unknown:
            raise InvalidInput(f"eSpeak voices are not configured for {unknown}", allowed=sorted(VOICES))
        self.languages = tuple(normalize_language(lang) for lang in languages)
        _, self.sample_rate, _ = _library()

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("default", self.name, self.languages)]

    def synthesize_stream(self, text: str, language: str = "es", voice: str | None = None,
                          options: SynthesisOptions | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
        lang = normalize_language(language)
        if lang not in self.languages:
            raise UnsupportedLanguage(
                f"language {language!r} is not supported by eSpeak here", allowed=list(self.languages)
            )
        if voice not in (None, "", "default"):
            raise InvalidInput(f"unknown voice {voice!r}", allowed=["default"], field="voice")
        opts = options or SynthesisOptions()
        for sentence in split_sentences(text):
            yield speak_sentence(sentence, VOICES[lang], opts)


def speak_sentence(text: str, voice: str, opts: SynthesisOptions) -> SpeechChunk:
    """One sentence in an eSpeak voice (any name eSpeak knows: "es", "fr-fr", "es+f3"), with its phoneme timings
    and the pause after it."""
    lib, rate, sink = _library()
    data = text.encode()
    with _LOCK:
        sink["audio"].clear()
        sink["events"].clear()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InvalidInput(f"eSpeak has no voice {voice!r}", field="language")
        lib.espeak_SetParameter(_RATE, int(175 * opts.speed), 0)
        lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        pcm = np.concatenate(sink["audio"]) if sink["audio"] else np.zeros(0, np.int16)
        events = list(sink["events"])
    audio = np.clip(pcm.astype(np.float32) / 32768 * opts.volume, -1, 1)
    phonemes = _with_closures(_timings(events, len(audio), rate), audio, rate)
    pause = np.zeros(int(_pause_after(text) / opts.speed * rate), np.float32)
    phonemes.append(Phoneme("_", len(audio) / rate, len(pause) / rate))
    return SpeechChunk(np.concatenate([audio, pause]), rate, text, phonemes)


def _pause_after(sentence: str) -> float:
    """Seconds of silence after a sentence (a clause: less). eSpeak ends its audio with the last sound, so its
    sentences ran together; a speaker (and Piper, ~0.15-0.27 s) pauses between them, and closes the mouth there."""
    return SENTENCE_PAUSE_S if sentence.rstrip()[-1:] in ".!?。！？…" else CLAUSE_PAUSE_S


def _timings(events: list[tuple[str, int]], n_samples: int, rate: int) -> list[Phoneme]:
    """Phoneme events (symbol, first sample) -> Phoneme spans that tile the chunk exactly."""
    out = []
    bounds = [min(s, n_samples) for _, s in events] + [n_samples]
    if not events or bounds[0] > 0:
        out.append(Phoneme("_", 0.0, bounds[0] / rate))  # leading silence
    for (symbol, _), a, b in zip(events, bounds[:-1], bounds[1:], strict=True):
        out.append(Phoneme(symbol or "_", a / rate, (b - a) / rate))
    return [p for p in out if p.duration > 0]


def _with_closures(phonemes: list[Phoneme], audio: np.ndarray, rate: int) -> list[Phoneme]:
    """eSpeak's event for a stop (p, b, t, d, k, g) marks its release; the silence of its closure, when the lips
    or the tongue are already shut, is counted in the phoneme before it. Give each stop its closure: the quiet
    stretch (5 ms steps under an eighth of the speech level) that ends at its event, at most CLOSURE_MAX_S long."""
    step = max(rate // 200, 1)
    frames = audio[: len(audio) // step * step].reshape(-1, step)
    if not len(frames):
        return phonemes
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    quiet = rms < np.percentile(rms, 90) / 8
    out = list(phonemes)
    for i in range(1, len(out)):
        prev, stop = out[i - 1], out[i]
        if stop.symbol.lstrip("ˈˌ")[:1] not in STOPS or prev.symbol in ("_", ""):
            continue
        k = end = min(int(round(stop.start * rate / step)), len(quiet))
        floor = max(int(np.ceil((prev.start + MIN_PHONEME_S) * rate / step)), end - int(CLOSURE_MAX_S * rate / step))
        while k > floor and quiet[k - 1]:
            k -= 1
        if k < end:
            start = k * step / rate
            out[i - 1] = Phoneme(prev.symbol, prev.start, start - prev.start)
            out[i] = Phoneme(stop.symbol, start, stop.start + stop.duration - start)
    return out
