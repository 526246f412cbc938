"""A real realtime-avatar server for the integration's tests, started from the project's own environment (this
package is only its client: it imports neither the server's code nor its dependencies)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]  # the realtime-avatar project
KEY = "pipecat-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "serve.log"
        bentoml = ROOT / ".venv" / "bin" / "bentoml"
        if not bentoml.exists():
            pytest.skip(f"the server's environment is missing ({bentoml}): run make setup")
        env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "AVATAR_DATA_DIR": str(tmp / "data"), **env}
        env.pop("VIRTUAL_ENV", None)
        target = "services.pipeline:AvatarPipeline"
        cmd = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 240) -> Server:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the server was not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def import_tiny_whisper(home: Path) -> None:
    """A tiny random Whisper in a model store of the tests' own, by the project's import script (its words are
    noise; the route, the SDKs and the bot's turn-taking are real)."""
    code = (
        "import sys; sys.path.insert(0, 'scripts')\n"
        "from pathlib import Path\n"
        "from models.asr.whisper_random import build_transformers_whisper\n"
        "import import_models\n"
        "sys.exit(import_models.main(['whisper', '--from', str(build_transformers_whisper(Path(sys.argv[1])))]))\n"
    )
    python = str(ROOT / ".venv" / "bin" / "python")
    env = {**os.environ, "BENTOML_HOME": str(home / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([python, "-c", code, str(home / "whisper")], cwd=ROOT, env=env, check=True, capture_output=True)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One keyed server, 256 px at 25 fps, with a tiny random Whisper, for the whole session."""
    tmp = tmp_path_factory.mktemp("server")
    (tmp / "whisper").mkdir()
    import_tiny_whisper(tmp)
    s = Server(tmp, AVATAR_SIZE="256", AVATAR_FPS="25", AVATAR_API_KEYS=KEY, BENTOML_HOME=str(tmp / "bentoml"))
    try:
        yield s.wait_ready()
    finally:
        s.stop()


@pytest.fixture(scope="session")
def piper_speech():
    """A Piper-spoken sentence at 24 kHz, 16-bit mono, made with the server's own environment (this environment
    has no TTS): what a Pipecat TTS would hand the face."""
    code = (
        "import sys, numpy as np\n"
        "from models.tts import create_engine, synthesize\n"
        "from models.media.audio import resample\n"
        "s = synthesize(create_engine('piper'), sys.argv[1])\n"
        "pcm = np.clip(resample(s.audio, s.sample_rate, 24000), -1, 1) * 32767\n"
        "sys.stdout.buffer.write(pcm.astype('<i2').tobytes())\n"
    )
    text = "Maybe both of them will bring a map. Please remember the blue umbrella, because it will rain today."
    python = str(ROOT / ".venv" / "bin" / "python")
    return subprocess.run([python, "-c", code, text], cwd=ROOT, capture_output=True, check=True).stdout
