"""Podman from Python with this project's settings: images, containers and their sizes.

Every call runs with `CONTAINERS_CONF=configs/containers.conf` (unless CONTAINERS_CONF is already set), so the
user's global podman configuration is neither needed nor changed. Used by scripts/build_images.py,
scripts/bench_images.py and the container tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "configs" / "containers.conf"
# unit -> image name (the tag is the flavour: localhost/realtime-avatar:cpu)
IMAGES = {"all": "realtime-avatar", "api": "realtime-avatar-api", "tts": "realtime-avatar-tts",
          "avatar": "realtime-avatar-avatar", "triton": "realtime-avatar-triton"}  # fmt: skip
PORT = 3000  # BentoML's port inside every image
# How the images are meant to run (configs/deploy/gke.yaml says the same to Kubernetes): the root filesystem
# read-only, /tmp a tmpfs (podman's default with --read-only) and /data a volume; no capability; no setuid gain.
HARDENED = ["--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges"]


class ContainerError(RuntimeError):
    """A podman command failed; the message is podman's last line."""


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONF))}


def missing_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


def podman(*args: str, check: bool = True, timeout: float | None = None, quiet: bool = True, stdin=None) -> str:
    """Run `podman ARGS` and return its stdout; raise ContainerError with podman's own last line on failure.
    quiet=False lets podman's output through to the terminal (and returns "")."""
    pipe = subprocess.PIPE if quiet else None
    r = subprocess.run(["podman", *args], env=env(), text=True, timeout=timeout, stdin=stdin, stdout=pipe, stderr=pipe)
    if check and r.returncode != 0:
        last = (r.stderr or r.stdout or "").strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        raise ContainerError(f"podman {args[0]}: {last[0]}")
    return r.stdout


def image_name(unit: str, flavor: str = "cpu") -> str:
    return f"localhost/{IMAGES[unit]}:{flavor}"


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], env=env()).returncode == 0


def image_size(name: str) -> int:
    """Unpacked size in bytes (what the image takes on a node's disk)."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).strip())


def compressed_size(name: str) -> int:
    """Bytes a registry stores and a node pulls: the image's layers gzip-compressed, plus config and manifest."""
    with tempfile.TemporaryDirectory(prefix="image-") as tmp:
        out = Path(tmp) / "dir"
        podman("save", "--compress", "--format", "docker-dir", "-o", str(out), name, timeout=900)
        return sum(f.stat().st_size for f in out.iterdir() if f.is_file() and f.name != "version")


@dataclass
class Container:
    """One `podman run -d` of an image; `url` is its published port on 127.0.0.1."""

    image: str
    name: str
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # host port published to the container's 3000; None = not published
    network: str | None = None
    volumes: list[str] = field(default_factory=list)  # "NAME:/data" named volumes or host paths
    aliases: list[str] = field(default_factory=list)  # extra DNS names on `network`
    hardened: bool = False  # read-only root (a tmpfs on /tmp), no capability, no privilege escalation
    command: list[str] = field(default_factory=list)  # instead of the image's own (BentoML's entrypoint)
    workdir: str | None = None
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run_args(self) -> list[str]:
        args = ["run", "-d", "--name", self.name, "--pull=never"]
        args += ["-p", f"127.0.0.1:{self.port}:{PORT}"] if self.port else []
        args += ["--network", self.network] if self.network else []
        args += [a for alias in self.aliases for a in ("--network-alias", alias)]
        args += [a for v in self.volumes for a in ("-v", v)]
        args += [a for k, v in self.env.items() for a in ("-e", f"{k}={v}")]
        args += HARDENED if self.hardened else []
        args += ["--workdir", self.workdir] if self.workdir else []
        args += ["--entrypoint", json.dumps(self.command[:1])] if self.command else []
        return [*args, self.image, *self.command[1:]]

    def start(self) -> Container:
        podman("rm", "-f", "-i", self.name)
        self.started_at = time.monotonic()
        podman(*self.run_args())
        return self

    def wait(self, path: str = "/readyz", timeout: float = 180) -> float:
        """Seconds from `start()` until `path` answers 200, waiting up to `timeout` from now (raises with the
        container's log when it does not)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(self.url + path).status_code == 200:
                        return time.monotonic() - self.started_at
                except httpx.HTTPError:
                    pass
                if not self.running():
                    break
                time.sleep(0.05)
        raise ContainerError(f"{self.name}: {path} did not answer 200:\n{self.logs()[-3000:]}")

    def restart(self) -> Container:
        """`podman start` of the stopped container: same name, volumes and network aliases (a new IP)."""
        self.started_at = time.monotonic()
        podman("start", self.name)
        return self

    def running(self) -> bool:
        out = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return out.strip() == "true"

    def logs(self) -> str:
        r = subprocess.run(["podman", "logs", self.name], env=env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        return r.stdout

    def stop(self, timeout: int = 10) -> None:
        podman("stop", "-i", "-t", str(timeout), self.name, check=False)

    def remove(self) -> None:
        podman("rm", "-f", "-i", "-v", self.name, check=False)
