"""Start and stop real `bentoml serve` processes, and Triton ones (services_triton), on loopback ports (integration
tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`bentoml serve TARGET` in its own process group, from the project root, with extra environment."""

    ready_path = "/readyz"

    def __init__(self, target: str, env: dict[str, str], log: Path, cwd: Path | None = None, port: int | None = None):
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **env}
        self.cwd = cwd or Path.cwd()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        bentoml = Path(sys.executable).with_name("bentoml")
        return [str(bentoml), "serve", self.target, "--host", "127.0.0.1", "--port", str(self.port)]

    def start(self) -> Server:
        cmd = self.command()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout: float = 180) -> Server:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.target} not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the server and every process under it, as a crash would (Linux: read from /proc). Killing the
        process group is not enough: BentoML's workers keep serving the inherited socket after their parent dies."""
        if self.proc is None:
            return
        for pid in reversed(_descendants(self.proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def worker_pids(self, service_name: str) -> list[int]:
        """The worker processes of one service of this server (`bentoml serve` names it on their command line)."""
        out = []
        for pid in _descendants(self.proc.pid) if self.proc else []:
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"--service-name" in args and args[args.index(b"--service-name") + 1] == service_name.encode():
                    out.append(pid)
        return out

    def rss_mb(self, service_name: str | None = None) -> float:
        """Resident memory of the server and all its processes, or of one service's workers, MB."""
        total = 0
        pids = self.worker_pids(service_name) if service_name else _descendants(self.proc.pid) if self.proc else []
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return total / 1e6

    def peak_mb(self, service_name: str) -> float:
        """The highest resident memory (VmHWM) any worker of one service has reached, MB."""
        peaks = [0.0]
        for pid in self.worker_pids(service_name):
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{pid}/status").read_text()
                peaks.append(int(status.split("VmHWM:")[1].split()[0]) / 1000)
        return max(peaks)

    def __enter__(self) -> Server:
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()


TRITON_PYTHON = Path(".venv-triton") / "bin" / "python"  # made by scripts/setup.sh where a system Python 3.11 is


def triton_missing(root: Path) -> str | None:
    """Why the Triton runtime cannot start here (one line), or None."""
    python = root / TRITON_PYTHON
    if not python.exists():
        return f"no {TRITON_PYTHON} (make setup builds it from a system Python 3.11; PyTriton's stub needs one)"
    probe = subprocess.run([str(python), "-c", "import pytriton"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"{TRITON_PYTHON} cannot import pytriton: {probe.stderr[-200:]}"


class TritonServer(Server):
    """`python -m services_triton` (Triton Inference Server through PyTriton) from .venv-triton: `triton_url` is
    what AVATAR_TTS_URL / AVATAR_RENDER_URL take; `metrics()` reads Triton's own Prometheus counters."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path | None = None, units=("tts", "avatar"), ports=None):
        super().__init__("services_triton", env, log, cwd, port=ports[0] if ports else None)
        self.grpc_port, self.metrics_port = ports[1:] if ports else (free_port(), free_port())
        self.units = units
        self.triton_url = f"triton://127.0.0.1:{self.port}"
        # the server says ready before its models are bound; the last unit's control model is bound last
        self.ready_path = f"/v2/models/{units[-1]}_control/ready"

    def command(self) -> list[str]:
        return [str(self.cwd / TRITON_PYTHON), "-m", "services_triton", "--units", *self.units, "--address",
                "127.0.0.1", "--http-port", str(self.port), "--grpc-port", str(self.grpc_port), "--metrics-port",
                str(self.metrics_port)]  # fmt: skip

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.port, self.grpc_port, self.metrics_port

    def metrics(self) -> dict[tuple[str, str], float]:
        """(metric, model) -> value, for Triton's per-model counters (nv_inference_*)."""
        out = {}
        for line in httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text.splitlines():
            if line.startswith("nv_inference_") and 'model="' in line:
                name, model = line.split("{", 1)[0], line.split('model="', 1)[1].split('"', 1)[0]
                out[(name, model)] = float(line.rsplit(" ", 1)[1])
        return out


def _descendants(pid: int) -> list[int]:
    """pid and all processes below it, parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop(0))
        todo += children.get(out[-1], [])
    return out
