"""`make image` refuses what it cannot build in one line: here, a base image without Python 3.11."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.container.conftest import ROOT

pytestmark = [pytest.mark.container]


def test_a_base_without_python_311_is_refused_in_one_line(images, names, tmp_path):
    from containers import podman

    base = f"localhost/{names('nopython', 'image')}:test"
    (tmp_path / "Containerfile").write_text(
        "FROM localhost/realtime-avatar-base:bookworm-2\nRUN rm -f /usr/bin/python3*\n"
    )
    podman("build", "--network", "none", "-t", base, str(tmp_path), timeout=300)
    cmd = [sys.executable, "scripts/build_images.py", "--units", "api", "--base", base]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("build_images: the base image") and "Python 3.11 is needed" in r.stderr


def test_every_image_is_labelled_with_the_projects_version(images):
    from containers import podman

    from models.version import VERSION

    for image in images.values():
        label = podman("image", "inspect", "--format", '{{ index .Labels "org.opencontainers.image.version" }}', image)
        assert label.strip() == VERSION, (image, label)
