"""Container tier: the images `make images` builds from the bentos, run with podman as a user would run them.

Needs podman (with buildah, runc and debootstrap for the Debian base; `.ci/run` installs them with apt, as root);
without podman the whole tier is skipped with one line. The images are built once per session by the real build
script (podman's layer cache makes a rebuild of unchanged requirements quick).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from containers import IMAGES, image_name, podman  # noqa: E402

from tests.helpers import skip_tier  # noqa: E402

MISSING = None if shutil.which("podman") else "podman is not installed (.ci/run installs podman with apt)"
RUN = uuid.uuid4().hex[:6]  # names of this session's containers, networks and volumes


def pytest_collection_modifyitems(config, items):
    skip_tier(items, "container", MISSING and f"container tier skipped: {MISSING}")


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, str]:
    """unit -> image name of all four cpu images, built (or brought up to date) by scripts/build_images.py, from an
    empty model store (the tiny models other tests import are not packed)."""
    cmd = [sys.executable, "scripts/build_images.py", "--units", *IMAGES]
    env = {**os.environ, "BENTOML_HOME": str(tmp_path_factory.mktemp("empty-model-store"))}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600, env=env)
    assert r.returncode == 0, f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return {unit: image_name(unit) for unit in IMAGES}


# what scripts/deploy_gke.sh fills in for the BentoML runtime (the default): the Services' names and ports
GKE_URLS = {"TTS_URL": "http://realtime-avatar-tts:3000", "RENDER_URL": "http://realtime-avatar-render:3000"}


def gke_manifest(values: dict[str, str] | None = None) -> list[dict]:
    """configs/deploy/gke.yaml with the deploy script's URLs and `values` filled in (others left as ${...})."""
    import yaml

    text = (ROOT / "configs" / "deploy" / "gke.yaml").read_text()
    for key, value in {**GKE_URLS, **(values or {})}.items():
        text = text.replace("${" + key + "}", value)
    assert values is None or "${" not in text
    return list(yaml.safe_load_all(text))


def free_port() -> int:
    from services.launcher import free_port as free

    return free()


@pytest.fixture(scope="session")
def names():
    """name(kind) -> a name unique to this session; everything named through it is removed at the end."""
    made: list[tuple[str, str]] = []

    def name(kind: str, what: str = "container") -> str:
        made.append((what, f"ra-test-{kind}-{RUN}"))
        return made[-1][1]

    yield name
    for what, n in reversed(made):
        if what == "container":
            podman("rm", "-f", "-i", "-v", n, check=False)
        elif what == "volume":
            podman("volume", "rm", "-f", n, check=False)
        elif what == "network":
            podman("network", "rm", "-f", n, check=False)
        elif what == "image":
            podman("rmi", "-f", f"localhost/{n}:test", check=False)
