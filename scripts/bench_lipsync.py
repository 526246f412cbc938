"""Lip sync per language: the evaluator over configs/scenarios.yaml, in process, summarised per language.

    python scripts/bench_lipsync.py [--readme docs] [--out bench-out/lipsync]

Runs `avatar eval`'s in-process path (every scenario made as an MP4 and as a stream, then measured with Face Mesh
on the decoded video) and writes the per-language table: median correlation of the mouth with the audio's
loudness and with its vowel band, median |A/V offset|, and the mouth's mean opening in pauses and in speech.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from readme_section import replace_section

from models.evaluation.report import language_table, write_report
from models.evaluation.runner import load_scenarios, run_local
from models.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=Path, default=ROOT / "configs" / "scenarios.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "lipsync")
    ap.add_argument("--readme", type=Path)
    args = ap.parse_args(argv)
    (args.out / "videos").mkdir(parents=True, exist_ok=True)
    results = run_local(load_scenarios(args.scenarios), args.out / "videos", Pipeline())
    report = write_report(results, args.out)
    text = (f"Measured by `make bench` on {platform.machine()}, {time.strftime('%Y-%m-%d')}: the {len(results)} "
            f"scenarios of `configs/scenarios.yaml` on the bundled portrait, 512x512, 25 fps; mouth opening "
            f"and eyes by Face Mesh on the decoded MP4 (fractions of face height).\n\n"
            + language_table(report["languages"]))  # fmt: skip
    print(text)
    if args.readme:
        replace_section(args.readme, "lipsync", text.rstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
