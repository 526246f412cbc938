"""RTF of each TTS engine on this machine, in one run (compare ratios; the machine is noisy).

    python scripts/bench_engines.py [--xtts-tokens 120] [--readme docs]

piper and espeak run as shipped. XTTS runs at its real size (XTTS-v2 architecture: 30 GPT layers, 1024 channels)
with random weights: the speed is that of the real model, the sound is noise. Random weights rarely emit the stop
token, so generation is capped at --xtts-tokens audio tokens and the RTF is compute time over audio produced.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from readme_section import replace_section

TEXTS = {"en": "Hello there! It is good to see you again today.", "es": "¡Hola! Me alegro de verte otra vez hoy.",
         "zh-cn": "你好！今天又见到你，我很高兴。"}  # fmt: skip


def rtf(engine, text: str, language: str, repeats: int = 3, **kw) -> tuple[float, float]:
    from models.tts import synthesize

    synthesize(engine, text, language, **kw)  # warm
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        speech = synthesize(engine, text, language, **kw)
        runs.append((time.perf_counter() - t) / speech.duration)
    return statistics.median(runs), speech.duration


def _clip() -> bytes:
    """5 s of a modulated tone as WAV: enough for XTTS's conditioning encoders (the content does not matter)."""
    import io

    import numpy as np
    import soundfile as sf

    t = np.arange(5 * 22050) / 22050
    buf = io.BytesIO()
    sf.write(
        buf, (0.3 * np.sin(2 * np.pi * 160 * t) * (1 + np.sin(8 * np.pi * t))).astype(np.float32), 22050, format="WAV"
    )
    return buf.getvalue()


def xtts_rtf(tokens: int) -> tuple[float, float]:
    import numpy as np

    from models.tts.xtts import XttsEngine
    from models.tts.xtts_random import build_random_xtts

    with tempfile.TemporaryDirectory() as d:
        folder = build_random_xtts(Path(d) / "xtts", tiny=False, max_audio_tokens=tokens)
        engine = XttsEngine(folder, Path(d) / "voices")
        voice = engine.add_voice("bench", _clip())["id"]
        t = time.perf_counter()
        chunk = next(engine.synthesize_stream("Hello there.", "en", voice))
        elapsed = time.perf_counter() - t
        seconds = len(chunk.audio) / chunk.sample_rate
        return elapsed / max(seconds, 1e-6), float(np.round(seconds, 2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xtts-tokens", type=int, default=120)
    ap.add_argument("--readme", type=Path)
    args = ap.parse_args()
    from models.tts import create_engine

    rows = []
    piper = create_engine("piper")
    espeak = create_engine("espeak", languages=("es", "zh-cn", "en"))
    for lang in ("en",):
        r, d = rtf(piper, TEXTS[lang], lang)
        rows.append(("piper (joe, en)", lang, r, d))
    for lang in ("es", "zh-cn", "en"):
        r, d = rtf(espeak, TEXTS[lang], lang)
        rows.append(("espeak", lang, r, d))
    r, d = xtts_rtf(args.xtts_tokens)
    rows.append((f"xtts (real size, random weights, {args.xtts_tokens} tokens)", "en", r, d))
    lines = ["| engine | language | audio | RTF (compute / audio) |", "|---|---|---|---|"]
    lines += [f"| {name} | {lang} | {dur:.2f} s | **{r:.3f}** |" for name, lang, r, dur in rows]
    table = "\n".join(lines)
    print(table)
    if args.readme:
        replace_section(args.readme, "engines", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
