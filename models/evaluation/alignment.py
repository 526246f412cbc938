"""The audio path's mouth against the text path's, on held-out sentences (configs/align_sentences.yaml).

Each sentence is spoken by the engine the text path uses, whose phoneme timings are the ground truth: Piper in
English; eSpeak in Spanish and Mandarin, in another voice variant and at another speed than the aligner's own
eSpeak rendering (so DTW matches two different voices, not a copy). Only the audio (and, in the text-known mode,
the text) goes to the aligner. Modes:

- `text`: forced alignment with the text;
- `audio`: the audio alone, as a file is animated (words heard, then aligned; formants where no recogniser);
- `live`: the audio alone, as a stream's piece is (phone recognition);
- `spectral`: the formant estimate, the last resort (models/align/spectral.py);
- `loudness`: the fallback the project had before, for comparison.

Cost is each method's time against Piper's own synthesis time for the same text (English; measured in the same
run, as machines differ 2x) and against the audio's length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from models.align import Alignment, AudioAligner
from models.align.spectral import estimate
from models.evaluation.agreement import compare
from models.text import split_sentences
from models.tts.base import Speech, SynthesisOptions

MODES = ("text", "audio", "live", "spectral", "loudness")
MEASURES = ("jaw_corr", "width_corr", "closure_recall", "closure_precision", "onset_ms")
VARIANTS = {"es": "es+f3", "zh-cn": "cmn+m3"}  # eSpeak voices of the held-out speech (the aligner says "es", "cmn")
SPEEDS = (0.85, 1.15)  # ...and their speaking rates, alternating


@dataclass
class Row:
    language: str
    text: str
    mode: str
    source: str
    method: str
    audio_s: float
    cost_ms: float
    piper_ms: float | None
    measures: dict


def load_sentences(path: str | Path) -> dict[str, list[str]]:
    return yaml.safe_load(Path(path).read_text())


def held_out_speech(piper, language: str, text: str, k: int) -> tuple[Speech, float | None]:
    """(speech with its true timings, Piper's time for it in s or None) as the text path makes it."""
    if language == "en":
        t = time.perf_counter()
        speech = Speech.join(piper.synthesize_stream(text, "en"))
        return speech, time.perf_counter() - t
    from models.tts.espeak import speak_sentence

    options = SynthesisOptions(speed=SPEEDS[k % len(SPEEDS)])
    return Speech.join(speak_sentence(s, VARIANTS[language], options) for s in split_sentences(text)), None


def evaluate(sentences: dict[str, list[str]], piper, aligner: AudioAligner | None = None,
             repeats: int = 3) -> list[Row]:  # fmt: skip
    """Each sentence spoken `repeats` times: Piper's durations are random (one run's median over eight sentences
    moved by 0.07), and eSpeak's held-out speech alternates its speed."""
    aligner = aligner or AudioAligner()
    aligner.warm()
    rows = []
    for language, texts in sentences.items():
        for k, text in enumerate(texts):
            for r in range(repeats):
                speech, piper_s = held_out_speech(piper, language, text, k + r)
                rows += _rows(aligner, speech, language, text, piper_s)
    return rows


def _rows(aligner: AudioAligner, speech: Speech, language: str, text: str, piper_s: float | None) -> list[Row]:
    out = []
    for mode in MODES:
        t = time.perf_counter()
        found = None
        if mode == "spectral":
            found = Alignment(estimate(speech.audio, speech.sample_rate), "spectral", "formants")
        elif mode != "loudness":
            found = aligner.align(speech.audio, speech.sample_rate, text if mode == "text" else None, language,
                                  live=mode == "live")  # fmt: skip
        cost = (time.perf_counter() - t) * 1000
        measures = compare(speech.phonemes, found.phonemes if found else None, speech.audio, speech.sample_rate)
        out.append(Row(language, text, mode, found.source if found else "loudness", found.method if found else "-",
                       speech.duration, cost, piper_s and piper_s * 1000, measures))  # fmt: skip
    return out


def summary(rows: list[Row]) -> list[dict]:
    """Medians per language and mode."""
    out = []
    for language in dict.fromkeys(r.language for r in rows):
        for mode in MODES:
            sel = [r for r in rows if r.language == language and r.mode == mode]
            if not sel:
                continue
            line = {"language": language, "mode": mode, "samples": len(sel),
                    "source": "/".join(sorted({r.source for r in sel})),
                    "method": "/".join(sorted({r.method for r in sel}))}  # fmt: skip
            for m in MEASURES:
                values = [r.measures[m] for r in sel if r.measures[m] is not None]
                line[m] = round(float(np.median(values)), 3) if values else None
            line["x_piper"] = _median([r.cost_ms / r.piper_ms for r in sel if r.piper_ms])
            line["rtf"] = _median([r.cost_ms / 1000 / r.audio_s for r in sel])
            out.append(line)
    return out


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def table(lines: list[dict]) -> str:
    head = ("| language | mode | mouth source (method) | jaw corr | width corr | closures recalled "
            "| closures precise | onset error ms | cost x Piper | cost x audio |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip

    def f(v) -> str:
        return "-" if v is None else f"{v:g}"

    body = "".join(
        f"| {x['language']} | {x['mode']} | {x['source']} ({x['method']}) | {f(x['jaw_corr'])} | {f(x['width_corr'])} "
        f"| {f(x['closure_recall'])} | {f(x['closure_precision'])} | {f(x['onset_ms'])} | {f(x['x_piper'])} "
        f"| {f(x['rtf'])} |\n"
        for x in lines
    )
    return head + body
