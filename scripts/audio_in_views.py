"""Audio in, to look at: one sentence spoken by Piper, its mouth made from each source on the same audio.

    python scripts/audio_in_views.py [--out docs] [--text "..."] [--start 0.4]

Rows (top to bottom): the text path (Piper's own phoneme timings), the audio with its text (aligned), the audio
alone as a file is animated (words heard, then aligned), the audio alone as a live piece is (phones recognised),
the formant estimate, and the loudness-only mouth this project had before. Each row is consecutive frames zoomed
on the mouth, labelled with the phoneme under each frame in that row's own timings. Writes `audio_in_strips.jpg`
and prints each row's jaw correlation with the text path's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from lipsync_views import ASCII_IPA
from mouth_views import mouth_box, mouth_strip

from models.align import AudioAligner
from models.align.spectral import estimate
from models.avatar.controls import MotionConfig
from models.evaluation.agreement import compare
from models.pipeline import Pipeline
from models.settings import load_settings
from models.spoken import SpeechPlan
from models.tts.base import SpeechChunk

TEXT = "Maybe both of them will bring a map. Well, look at the moon!"


def frames_of(pipe: Pipeline, audio: np.ndarray, sr: int, phonemes) -> np.ndarray:
    plan = SpeechPlan(pipe.renderer.fps, MotionConfig())
    _, controls = plan.add(SpeechChunk(audio, sr, "", phonemes))
    return pipe.renderer.render_batch([(pipe.avatar(), controls, None)])[0]


def label(strip: np.ndarray, name: str, phonemes, first: int, fps: float, n: int) -> np.ndarray:
    cv2.putText(strip, name, (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    for k in range(n):
        t = (first + k + 0.5) / fps
        under = "".join(p.symbol for p in phonemes or [] if p.start <= t < p.start + p.duration).translate(ASCII_IPA)
        cv2.putText(strip, under, (k * 160 + 5, 112), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return strip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--start", type=float, default=0.4, help="second where the strips start")
    ap.add_argument("--frames", type=int, default=14)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(load_settings(overrides={"storage": {"data_dir": tmp}}))
        speech = pipe.speak(args.text)
        audio, sr, aligner = speech.audio, speech.sample_rate, AudioAligner()
        rows = {
            "text path (Piper)": speech.phonemes,
            "aligned (audio+text)": aligner.align(audio, sr, args.text).phonemes,
            "transcribed (audio)": aligner.align(audio, sr).phonemes,
            "recognized (live)": aligner.align(audio, sr, live=True).phonemes,
            "spectral": estimate(audio, sr),
            "loudness (before)": None,
        }
        fps, first = pipe.renderer.fps, int(round(args.start * pipe.renderer.fps))
        strips = []
        for name, phonemes in rows.items():
            frames = frames_of(pipe, audio, sr, phonemes)
            strip = mouth_strip(frames, mouth_box(pipe.avatar()), [first], args.frames)
            strips.append(label(strip, name, phonemes, first, fps, args.frames))
            corr = compare(speech.phonemes, phonemes, audio, sr)["jaw_corr"]
            print(f"{name:24} jaw corr with the text path {corr:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out / "audio_in_strips.jpg"), cv2.cvtColor(np.concatenate(strips), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
