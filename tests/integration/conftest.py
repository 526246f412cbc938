"""Real `bentoml serve` processes on loopback ports, started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, target: str, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        bentoml = Path(sys.executable).with_name("bentoml")
        cmd = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> Server:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture
def serve(tmp_path):
    """serve(target, **env) -> a ready Server; all are stopped at the end of the test."""
    started: list[Server] = []
    base = {
        "AVATAR_DATA_DIR": str(tmp_path / "data"),
        "BENTOML_DO_NOT_TRACK": "true",
        "AVATAR_SIZE": "128",
        "AVATAR_FPS": "12",
    }

    def start(target: str, wait: bool = True, **env: str) -> Server:
        server = Server(target, {**base, **env}, tmp_path / f"serve-{len(started)}.log")
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for s in started:
        s.stop()
