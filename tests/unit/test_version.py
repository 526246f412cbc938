"""One version everywhere: models/version.py, the package metadata, `avatar --version`, the CHANGELOG's newest
release and the Cloud Build configs (the images' label: tests/container/test_build.py; /health: tests/service)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models.version import VERSION

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_package_and_the_cli_report_it():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert importlib.metadata.version("realtime-avatar") == VERSION
    out = subprocess.run([sys.executable, "-m", "models.cli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == f"avatar {VERSION}", out


def test_the_changelog_keeps_a_changelog_with_this_version_on_top():
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases and releases[0][0] == VERSION, releases
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
    assert [r[1] for r in releases] == sorted((r[1] for r in releases), reverse=True)


def test_cloud_build_passes_it_to_the_image(tmp_path):
    cmd = ["bash", "scripts/deploy_cloudrun.sh", "--project", "demo-proj", "--dry-run", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    assert f"VERSION={VERSION}" in (tmp_path / "cloudbuild-all.yaml").read_text()
