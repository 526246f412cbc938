"""ASGI test clients of the public API (its TTS and avatar dependencies run in-process)."""

from __future__ import annotations

import contextlib
import os

import pytest


@contextlib.contextmanager
def api_client(env: dict[str, str]):
    """A started test client with `env` applied while the services are created."""
    from starlette.testclient import TestClient

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from services.pipeline import AvatarPipeline

        with TestClient(AvatarPipeline.to_asgi()) as client:
            yield client
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def small_env(root) -> dict[str, str]:
    return {
        "AVATAR_DATA_DIR": str(root),
        "AVATAR_SIZE": "128",
        "AVATAR_FPS": "12",
        "AVATAR__SERVING__MAX_UPLOAD_MB": "1",
        "AVATAR__AUDIO_IN__MAX_AUDIO_S": "20",
    }


@pytest.fixture(scope="session")
def client(tmp_path_factory, fake_llm, tiny_whisper):
    """One app per test process (BentoML registers its metrics globally). A tiny random XTTS and a tiny random
    Whisper (tests/conftest.py) are imported into the tests' model store first, so voice cloning and
    transcription are served too; the LLM is the fake one."""
    _import_tiny_xtts(tmp_path_factory)
    env = small_env(tmp_path_factory.mktemp("api"))
    env |= {"AVATAR__LLM__BASE_URL": fake_llm.base_url, "AVATAR__LLM__MODEL": "fake-model"}
    with api_client(env) as c:
        yield c


def _import_tiny_xtts(tmp_path_factory) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import import_models

    try:
        from models.tts.xtts_random import build_random_xtts

        import_models.main(["xtts", "--from", str(build_random_xtts(tmp_path_factory.mktemp("xtts-src")))])
    except ImportError:
        pass  # coqui-tts missing: the cloning tests skip themselves
