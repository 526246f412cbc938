"""Shared fixtures. Everything is offline: the Piper voice and the portrait ship with the installed packages."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
# a model store of the tests' own: nothing a developer imported leaks in (tests that need one build it)
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-home-")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("avatar-data")


@pytest.fixture(scope="session")
def settings(data_dir):
    from models.settings import load_settings

    return load_settings(overrides={"storage": {"data_dir": str(data_dir)}, "avatar": {"size": 256}}, env={})


@pytest.fixture(scope="session")
def portrait_rgb():
    from importlib import resources

    from models.avatar.images import load_image

    return load_image((resources.files("assets") / "astronaut.png").read_bytes())


@pytest.fixture(scope="session")
def pipeline(settings):
    from models.pipeline import Pipeline

    return Pipeline(settings)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where CUDA or MPS is present."""
    from models.device import resolve_device

    if resolve_device("auto") != "cpu":
        return
    skip = pytest.mark.skip(reason="no CUDA or MPS device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
