"""Find model folders in the BentoML model store without importing BentoML.

The store is a plain directory: `$BENTOML_HOME/models/<name>/<version>/` with a `latest` file naming the newest
version (filled by `scripts/import_models.py`, which does use BentoML). The library only reads it. Served from a
bento (in an image: `$BENTO_PATH`), the models packed into the bento are the store, as BentoML has it.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.errors import EngineUnavailable


def store_root() -> Path:
    bento = os.environ.get("BENTO_PATH")
    if bento and (Path(bento) / "models").is_dir():
        return Path(bento) / "models"
    return Path(os.environ.get("BENTOML_HOME", "~/bentoml")).expanduser() / "models"


def find_model(tag: str, root: Path | None = None) -> Path | None:
    """Folder of `name[:version]` (version defaults to latest), or None when it is not in the store."""
    name, _, version = tag.partition(":")
    base = (root or store_root()) / name.lower()
    if not version or version == "latest":
        latest = base / "latest"
        if not latest.is_file():
            return None
        version = latest.read_text().strip()
    folder = base / version
    return folder if folder.is_dir() else None


def require_model(tag: str, hint: str) -> Path:
    folder = find_model(tag)
    if folder is None:
        raise EngineUnavailable(f"model {tag!r} is not in the BentoML model store ({store_root()}); {hint}")
    return folder
