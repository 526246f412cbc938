"""Start and stop real `bentoml serve` processes on loopback ports (integration tests, serving benchmark)."""

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

    def __init__(self, target: str, env: dict[str, str], log: Path, cwd: Path | None = None, port: int | None = None):
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **env}
        self.cwd = cwd or Path.cwd()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        bentoml = Path(sys.executable).with_name("bentoml")
        cmd = [str(bentoml), "serve", self.target, "--host", "127.0.0.1", "--port", str(self.port)]
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
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
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
