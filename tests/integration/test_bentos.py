"""`bentoml build` of every bento, offline, and what the exported archives hold (the Docker build contexts)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All five bentos (cpu) plus the TTS bento (cuda), in a model store holding a tiny XTTS."""
    home = tmp_path_factory.mktemp("bentoml-home")
    env = {**os.environ, "BENTOML_HOME": str(home)}
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("xtts")
    for f in ("model.pth", "config.json", "vocab.json"):  # packing is all that is checked here: stand-in files
        (src / f).write_text(f"stand-in {f}")
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True}
    subprocess.run([sys.executable, "scripts/import_models.py", "xtts", "--from", str(src)], **run)
    subprocess.run([sys.executable, "scripts/build_bentos.py", "--out", str(out)], **run)
    subprocess.run(
        [sys.executable, "scripts/build_bentos.py", "--units", "tts", "--flavor", "cuda", "--out", str(out)], **run
    )
    return out


def _open(archive: Path, tmp_path: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


@pytest.mark.parametrize(
    "name,service,has_model",
    [
        ("realtime-avatar", "services.pipeline:AvatarPipeline", True),
        ("realtime-avatar-tts", "services.tts:TTSService", True),
        ("realtime-avatar-render", "services.avatar:AvatarService", False),
        ("realtime-avatar-api", "services.pipeline:AvatarPipeline", False),
        ("realtime-avatar-triton", "services.tts:TTSService", True),  # its image runs python -m services_triton
    ],
)
def test_bento_contents(built, tmp_path, name, service, has_model):
    root = _open(built / f"{name}.bento", tmp_path)
    info = yaml.safe_load((root / "bento.yaml").read_text())
    assert info["service"] == service and info["labels"]["flavor"] == "cpu"
    assert any(m["tag"].startswith("xtts-v2:") for m in info["models"]) == has_model
    if has_model:
        assert list((root / "models" / "xtts-v2").glob("*/model.pth"))
    for f in ("services/pipeline.py", "models/pipeline.py", "configs/default.yaml", "assets/astronaut.png"):
        assert (root / "src" / f).exists(), f
    containerfile = (root / "src" / "bentos" / "Containerfile").read_text()  # what the images are built with
    assert "USER bentoml" in containerfile and "EXPOSE 3000" in containerfile  # non-root, BentoML's port
    assert "ARG BASE_IMAGE=python:3.11-slim" in containerfile  # Cloud Build's public base unless told otherwise
    for f in ("install_env.sh", "container_setup.sh", "warm_start.py"):
        assert (root / "src" / "bentos" / f).exists(), f
    assert "if [[ -v PORT ]]" in (root / "env" / "docker" / "entrypoint.sh").read_text()  # Cloud Run's $PORT
    dockerfile = (root / "env" / "docker" / "Dockerfile").read_text()  # BentoML's own, for `bentoml containerize`
    reqs = (root / "env" / "python" / "requirements.txt").read_text()
    if name == "realtime-avatar-api":
        assert "torch==" not in reqs and "env/docker/script__" not in dockerfile
    else:
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs and "torch==2.13.0" in reqs
        assert "env/docker/script__" in dockerfile  # container_setup.sh runs there too
    if name == "realtime-avatar-triton":  # the TTS bento's requirements plus PyTriton, and the Triton adapter
        assert "nvidia-pytriton==0.7.0" in reqs and (root / "src" / "services_triton" / "server.py").exists()


def test_cuda_flavour_takes_cuda_126_torch_and_the_same_pins_otherwise(built, tmp_path):
    cuda = _open(built / "realtime-avatar-tts-cuda.bento", tmp_path / "cuda")
    cpu = _open(built / "realtime-avatar-tts.bento", tmp_path / "cpu")
    lines = {
        k: (r / "env" / "python" / "requirements.txt").read_text().splitlines()
        for k, r in (("cuda", cuda), ("cpu", cpu))
    }
    assert lines["cuda"][0] == "--extra-index-url https://download.pytorch.org/whl/cu126"  # runs on drivers >= 525
    assert lines["cpu"][0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert lines["cuda"][1:] == lines["cpu"][1:] and "torch==2.13.0" in lines["cuda"]
    assert yaml.safe_load((cuda / "bento.yaml").read_text())["labels"]["flavor"] == "cuda"
    # the image is built by the same Containerfile and install script: the no-deps installs follow the flavour
    assert (cuda / "src" / "bentos" / "Containerfile").read_text() == (
        cpu / "src" / "bentos" / "Containerfile"
    ).read_text()
