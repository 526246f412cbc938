"""Lip sync to look at, per language: the phonemes, the planned jaw, the rendered mouth and the audio, one clip each.

    python scripts/lipsync_views.py [--out docs] [--prefix lipsync] [--lang es ...]

For each language, one sentence (with closures, rounded vowels and a pause) is spoken by the engine that serves
it and rendered on the bundled portrait as `Pipeline.generate` plans it (piece by piece, raw frames: no video
coding). Face Mesh then measures the mouth in the frames. Writes `PREFIX_LANG.png`: the phoneme spans, the
planned jaw, the rendered mouth opening, and the audio's loudness and vowel-band energy (all normalised, one time
axis), with the correlations in the title. Also writes `PREFIX_strips.jpg`: a row of consecutive frames zoomed on
the mouth per language, each labelled with the phoneme under it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from mouth_views import mouth_box, mouth_strip

from models.avatar.controls import MotionConfig
from models.evaluation import metrics
from models.evaluation.measure import face_tracks
from models.media import rms_envelope
from models.pipeline import Pipeline
from models.settings import load_settings
from models.spoken import SpeechPlan

SENTENCES = {
    "en": ("Maybe both of them will bring a map. Well, look at the moon!", 0.0),
    "es": ("Mamá, mira: el barco boga despacio por el mar. ¡Qué bonito!", 1.0),
    "zh-cn": ("妈妈买了八本书。我们去湖边走走吧！", 0.0),
}  # (text, second where the strip starts)
# OpenCV's font is ASCII: IPA symbols written the X-SAMPA way on the strips
ASCII_IPA = str.maketrans({
    "β": "B", "ð": "D", "ɾ": "4", "ˈ": "'", "ˌ": ",", "ɣ": "G", "θ": "T", "ŋ": "N", "ɲ": "J", "ʃ": "S", "ə": "@",
    "ɛ": "E", "ɔ": "O", "ɑ": "A", "ʊ": "U", "ɪ": "I", "ʌ": "V", "ɹ": "r\\", "æ": "{", "ɕ": "s\\", "ʂ": "s`", "ɐ": "6",
    "ɚ": "@`", "ɜ": "3", "ɡ": "g", "ː": ":",
})  # fmt: skip


def clip(pipe: Pipeline, text: str, language: str) -> dict:
    """Speech, plan, frames and face tracks of one sentence, as the MP4 path makes them."""
    speech = pipe.speak(text, language)
    plan, jaw, phonemes = SpeechPlan(pipe.renderer.fps, MotionConfig()), [], []
    avatar = pipe.avatar()
    frames = []
    for chunk in speech.chunks:
        offset = plan.duration
        _, controls = plan.add(chunk)
        phonemes += [(p.symbol, offset + p.start, p.duration) for p in chunk.phonemes or []]
        if controls is not None:
            jaw.append(controls.jaw)
            frames.append(pipe.renderer.render_batch([(avatar, controls, None)])[0])
    frames = np.concatenate(frames)
    return {"frames": frames, "jaw": np.concatenate(jaw), "phonemes": phonemes, "audio": plan.audio,
            "sr": plan.sample_rate, "tracks": face_tracks(frames), "avatar": avatar}  # fmt: skip


def plot(c: dict, fps: float, language: str, text: str, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(c["frames"])
    loud = rms_envelope(c["audio"], c["sr"], fps, n)
    vowels = metrics.vowel_envelope(c["audio"], c["sr"], fps, n)
    mouth, jaw = c["tracks"]["mouth"], np.clip(c["jaw"], 0, None)
    scores = {"plan_vs_loudness": metrics.av_offset(jaw, loud, fps)["lip_sync_corr"],
              "mouth_vs_plan": round(float(np.corrcoef(jaw, mouth)[0, 1]), 3),
              "mouth_vs_loudness": metrics.av_offset(mouth, loud, fps)["lip_sync_corr"],
              "mouth_vs_vowel_band": metrics.av_offset(mouth, vowels, fps)["lip_sync_corr"]}  # fmt: skip
    t = (np.arange(n) + 0.5) / fps
    fig, ax = plt.subplots(figsize=(max(8, n / fps * 3), 4))
    for symbol, start, dur in c["phonemes"]:
        ax.axvspan(start, start + dur, color="0.92" if symbol != "_" else "white", ec="0.8", lw=0.5)
        ax.text(start + dur / 2, 1.08, symbol, ha="center", va="bottom", fontsize=7)
    ax.plot(t, jaw / max(jaw.max(), 1e-6), label="planned jaw", lw=2)
    ax.plot(t, mouth / max(mouth.max(), 1e-6), label="rendered mouth (Face Mesh)", lw=2)
    ax.plot(t, loud / max(loud.max(), 1e-6), label="audio loudness", alpha=0.7)
    ax.plot(t, vowels / max(vowels.max(), 1e-6), label="audio 300-1000 Hz", alpha=0.7, ls="--")
    ax.set_ylim(0, 1.2)
    ax.set_xlabel("seconds")
    shown = text if all(ord(ch) < 0x2000 for ch in text) else "(see scripts/lipsync_views.py)"  # no CJK font here
    ax.set_title(f"{language}: {shown}\n" + ", ".join(f"{k} {v}" for k, v in scores.items()), fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return scores


def labelled_strip(c: dict, fps: float, start_s: float, n: int = 14) -> np.ndarray:
    first = int(round(start_s * fps))
    strip = mouth_strip(c["frames"], mouth_box(c["avatar"]), [first], n)
    for k in range(n):
        t = (first + k + 0.5) / fps
        under = "".join(s for s, a, d in c["phonemes"] if a <= t < a + d).translate(ASCII_IPA)
        cv2.putText(strip, under, (k * 160 + 5, 112), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return strip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--prefix", default="lipsync")
    ap.add_argument("--lang", nargs="+", default=list(SENTENCES), choices=list(SENTENCES))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    strips = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(load_settings(overrides={"storage": {"data_dir": tmp}}))
        fps = pipe.renderer.fps
        for lang in args.lang:
            text, start = SENTENCES[lang]
            c = clip(pipe, text, lang)
            scores = plot(c, fps, lang, text, args.out / f"{args.prefix}_{lang}.png")
            print(lang, scores)
            strip = labelled_strip(c, fps, start)
            cv2.putText(strip, lang, (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1, cv2.LINE_AA)
            strips.append(strip)
    cv2.imwrite(str(args.out / f"{args.prefix}_strips.jpg"), cv2.cvtColor(np.concatenate(strips), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
