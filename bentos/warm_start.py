"""Start the bento's unit once inside the image build (bentos/Containerfile), then stop it.

Three jobs: the build fails when the image cannot serve (a missing library, a broken install); the bytecode of
exactly the modules a start imports is written next to them, so a container starts without compiling them
(its user cannot write there) while the rest of the environment carries no bytecode; and the landmarks of the
bundled portrait are left in the data folder (/data/landmarks), so a fresh container does not load MediaPipe to
find them again. The all-in-one unit also answers one short stream, which imports what the first request needs.
Standard library only: it runs before anything else in the image is known to work.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENTO = Path(os.environ.get("BENTO_PATH", Path(__file__).resolve().parents[2]))
PORT = 3999
URL = f"http://127.0.0.1:{PORT}"


def unit() -> str:
    for line in (BENTO / "bento.yaml").read_text().splitlines():  # labels: ... unit: X (no YAML parser needed)
        if line.strip().startswith("unit:"):
            return line.split(":", 1)[1].strip()
    return "all-in-one"


def status(path: str, body: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_for(path: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        if status(path, timeout=2)[0] == 200:
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"{path} did not answer 200 within {timeout:.0f} s")


def main() -> int:
    which = unit()
    tmp_before = set(Path(tempfile.gettempdir()).iterdir())
    try:
        # twice at most: a start that fails once (Triton's stub handshake has, on a loaded build machine) is retried
        # in a fresh scratch folder; a broken install fails both
        return 0 if any(start_once(which, attempt) for attempt in (1, 2)) else 1
    finally:
        # what the start left in /tmp (caches, owned by root, the build's user): a container's /tmp starts as a
        # copy of the image's, where the serving user could not write into them (PyTriton's workspace failed)
        for left in set(Path(tempfile.gettempdir()).iterdir()) - tmp_before:
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)


def start_once(which: str, attempt: int) -> bool:
    scratch = Path(tempfile.mkdtemp(prefix="warm-"))
    env = {**os.environ, "BENTOML_HOME": str(scratch / "bentoml"), "AVATAR_DATA_DIR": str(scratch / "data")}
    if which == "api":  # the API alone: its dependencies are elsewhere; it starts (and /livez answers) without them
        env |= {"AVATAR_TTS_URL": "http://127.0.0.1:9", "AVATAR_RENDER_URL": "http://127.0.0.1:9"}
    log = (scratch / "serve.log").open("wb")
    cmd = ["bentoml", "serve", str(BENTO), "--host", "127.0.0.1", "--port", str(PORT)]
    if which == "triton":  # both units' models in Triton (services_triton); its workspace in the scratch folder,
        env["PYTRITON_HOME"] = str(scratch / "pytriton")  # not the image's /tmp (a root-owned copy there breaks runs)
        cmd = [sys.executable, "-m", "services_triton", "--address", "127.0.0.1", "--http-port", str(PORT),
               "--grpc-port", str(PORT - 1), "--metrics-port", str(PORT - 2)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=BENTO / "src")  # fmt: skip
    try:
        # Triton: its server is ready before the models are bound; the last one bound (services_triton) is this one
        took = wait_for({"api": "/livez", "triton": "/v2/models/tts_control/ready"}.get(which, "/readyz"), proc)
        print(f"warm start: the {which} unit answered after {took:.1f} s")
        if which == "all-in-one":
            code, body = status("/api/v1/stream", {"text": "Hello."}, timeout=120)
            if code != 200 or body[4:8] != b"ftyp":
                raise RuntimeError(f"a short stream answered {code} with {len(body)} bytes")
            print(f"warm start: a short stream answered {len(body)} bytes of fMP4")
        return True
    except RuntimeError as e:
        log.flush()
        print((scratch / "serve.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        print(f"warm start failed (attempt {attempt} of 2): {e}", file=sys.stderr)
        return False
    finally:
        stop(proc)
        keep_landmarks(scratch / "data" / "landmarks")
        shutil.rmtree(scratch, ignore_errors=True)


def keep_landmarks(found: Path) -> None:
    """Copy the landmark cache the start made into the image's data folder, owned by the user that serves."""
    data = os.environ.get("AVATAR_DATA_DIR")
    if not data or not found.is_dir():
        return
    target = Path(data) / "landmarks"
    target.mkdir(parents=True, exist_ok=True)
    owner = Path(data).stat()
    copied = [Path(shutil.copy2(p, target / p.name)) for p in found.glob("*.npy")]
    for f in (target, *copied):
        os.chown(f, owner.st_uid, owner.st_gid)
    print(f"warm start: kept the landmarks of {len(copied)} portrait(s) in {target}")


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
