"""The OpenAPI document describes the API: schemathesis with every check, against a real `bentoml serve` on
loopback, finds nothing (bounded examples, a fixed seed; ~1 min). Its settings: schemathesis.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("keys", "examples"), [(None, 20), ("k-1", 5)], ids=["open", "with-api-keys"]
)  # with keys: every check, plus `ignored_auth` (a request without the key must get 401)
def test_schemathesis_finds_nothing(serve, tmp_path, keys, examples, fake_llm, tiny_whisper):
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists() and not shutil.which("schemathesis"):
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    env = {"AVATAR__LLM__BASE_URL": fake_llm.base_url, "AVATAR__LLM__MODEL": "fake"}  # conversation is set up
    server = serve("services.pipeline:AvatarPipeline", **env, **({"AVATAR_API_KEYS": keys} if keys else {}))
    assert server.url.startswith("http://127.0.0.1:")
    cmd = [
        str(cli if cli.exists() else shutil.which("schemathesis")),
        "--config-file", str(ROOT / "schemathesis.toml"),
        "run", f"{server.url}/docs.json",
        "--checks", "all",
        "--max-examples", str(examples),
        "--seed", "1",
        "--workers", "1",
        "--request-timeout", "60",
        "--generation-database", "none",
        "--no-color",
        "--output-truncate", "false",
    ]  # fmt: skip
    cmd += ["--header", f"Authorization: Bearer {keys}"] if keys else []
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    assert "29 selected" in out and " passed" in out, out[-3000:]
