"""Build the bentos offline and export them as archives (the Docker build contexts) to bentos/dist/.

    python scripts/build_bentos.py [--units all tts avatar api] [--flavor cpu|cuda] [--out bentos/dist]

Each unit is its bentofile (the root one for "all", bentos/<unit>/bentofile.yaml for the split ones) with two
things decided here: the index torch comes from (cpu: the CPU wheels; cuda: CUDA 12.6 wheels, which run on the
535+ drivers of Cloud Run's L4 and of GKE, unlike PyPI's default CUDA 13 build that needs driver 580+), and the
model-store entries packed in (xtts-v2 when it has been imported). Requirements are not locked here (this machine
reaches only its package mirror); see the docs for locking a release.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
UNITS = {
    "all": ROOT / "bentofile.yaml",
    "tts": ROOT / "bentos" / "tts" / "bentofile.yaml",
    "avatar": ROOT / "bentos" / "avatar" / "bentofile.yaml",
    "api": ROOT / "bentos" / "api" / "bentofile.yaml",
    "triton": ROOT / "bentos" / "triton" / "bentofile.yaml",
}
TORCH_INDEX = {"cpu": "https://download.pytorch.org/whl/cpu", "cuda": "https://download.pytorch.org/whl/cu126"}
NEEDS_XTTS = ("all", "tts", "triton")


def bento_options(unit: str, flavor: str, models: list[str]) -> dict:
    """The bentofile of `unit` as keyword arguments of bentoml.bentos.build, adjusted for the flavour."""
    cfg = yaml.safe_load(UNITS[unit].read_text())
    cfg["labels"] = {**cfg.get("labels", {}), "flavor": flavor}
    if unit != "api":  # the API bento has no torch
        cfg["python"] = {**cfg["python"], "extra_index_url": [TORCH_INDEX[flavor]]}
    if models and unit in NEEDS_XTTS:
        cfg["models"] = models
    cfg["name"] = cfg["name"] if flavor == "cpu" else f"{cfg['name']}-{flavor}"
    py = cfg["python"]
    if py.get("packages") and py.get("requirements_txt"):  # BentoML keeps only the file: both go into one
        merged = ROOT / "build" / f"requirements-{unit}.txt"
        merged.parent.mkdir(exist_ok=True)
        merged.write_text((ROOT / py["requirements_txt"]).read_text() + "\n".join(py.pop("packages")) + "\n")
        py["requirements_txt"] = str(merged.relative_to(ROOT))  # BentoML takes paths in the build context
    return cfg


def packed_models() -> list[str]:
    """Model-store entries to pack: XTTS-v2 and Whisper if they were imported (the embedded engines ship in
    wheels); both serve in the TTS service."""
    import bentoml

    tags = []
    for name in ("xtts-v2:latest", "whisper:latest"):
        with contextlib.suppress(bentoml.exceptions.NotFound):
            tags.append(str(bentoml.models.get(name).tag))
    return tags


def build(unit: str, flavor: str, out: Path, models: list[str]) -> Path:
    """`bentoml build` of the adjusted bentofile (written to a temporary file), then `bentoml export`."""
    opts = bento_options(unit, flavor, models)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(opts, f)
    try:
        tag = subprocess.run([bentoml, "build", "-f", f.name, "-o", "tag", str(ROOT)], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    finally:
        os.unlink(f.name)
    tag = tag.removeprefix("__tag__:")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{opts['name']}.bento"
    path.unlink(missing_ok=True)
    subprocess.run([bentoml, "export", tag, str(path)], check=True, capture_output=True)
    print(f"built {tag} -> {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", nargs="+", choices=sorted(UNITS), default=list(UNITS))
    ap.add_argument("--flavor", choices=sorted(TORCH_INDEX), default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "bentos" / "dist")
    args = ap.parse_args(argv)
    models = packed_models()
    for unit in args.units:
        build(unit, args.flavor, args.out, models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
