"""Fill the BentoML model store with real-weight engines (the only step that touches weights).

    python scripts/import_models.py xtts --from DIR      # a local XTTS-v2 folder
    python scripts/import_models.py xtts --download      # fetch coqui/XTTS-v2 where the network allows
    python scripts/import_models.py list

The folder must hold model.pth, config.json and vocab.json (speakers_xtts.pth is optional). The model is saved as
`xtts-v2` (override with --name); the services pick up `xtts-v2:latest` on their next start.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

XTTS_FILES = ("model.pth", "config.json", "vocab.json")
XTTS_OPTIONAL = ("speakers_xtts.pth", "LICENSE.txt")
XTTS_REPO = "coqui/XTTS-v2"
LICENCE = (
    "XTTS-v2 weights are released by Coqui under the Coqui Public Model License 1.0.0 (CPML): "
    "non-commercial use only; see https://coqui.ai/cpml. Importing them means you accept its terms."
)


def _download(dest: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        sys.exit("import_models: --download needs huggingface_hub (installed with coqui-tts by make setup)")
    names = list(XTTS_FILES + XTTS_OPTIONAL)
    return Path(snapshot_download(XTTS_REPO, local_dir=dest, allow_patterns=names))


def import_xtts(source: Path, name: str) -> str:
    import bentoml

    missing = [f for f in XTTS_FILES if not (source / f).is_file()]
    if missing:
        sys.exit(f"import_models: {source} lacks {', '.join(missing)} (needs {', '.join(XTTS_FILES)})")
    print(LICENCE)
    meta = {"licence": "CPML-1.0", "source": str(source)}
    with bentoml.models.create(name, labels={"engine": "xtts"}, metadata=meta) as model:
        for f in XTTS_FILES + XTTS_OPTIONAL:
            if (source / f).is_file():
                shutil.copy2(source / f, Path(model.path) / f)
    return str(model.tag)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("xtts", help="import Coqui XTTS-v2")
    src = x.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="source", type=Path, help="local folder with the weights")
    src.add_argument("--download", action="store_true", help=f"download {XTTS_REPO}")
    x.add_argument("--name", default="xtts-v2")
    sub.add_parser("list", help="models in the store")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        import bentoml

        for m in bentoml.models.list():
            print(m.tag, m.info.labels)
        return 0
    if args.download:
        import tempfile

        source = _download(Path(tempfile.mkdtemp(prefix="xtts-")))
    else:
        source = args.source
    print(f"imported {import_xtts(source, args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
