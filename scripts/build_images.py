"""Build OCI images of the bentos with podman: `make image` (the all-in-one) and `make images` (and the split units).

    python scripts/build_images.py [--units all api tts avatar] [--flavor cpu|cuda] [--base IMAGE] [--online]

Each unit's bento is built as `make bento` builds it (scripts/build_bentos.py), unpacked into build/images/, and
built with its own bentos/Containerfile into localhost/realtime-avatar[-UNIT]:FLAVOR.

- Base (`--base` or BASE_IMAGE): any image with Python 3.11 and its venv module, e.g. python:3.11-slim (what
  Cloud Build uses). Without one, a Debian bookworm base is made once with debootstrap
  (localhost/realtime-avatar-base:bookworm-2, ~140 MB), which needs root and Debian's package mirror only.
- Packages: a wheelhouse under build/wheelhouse/FLAVOR, filled by this machine's pip with its own configuration
  (indexes, find-links, CA), is bind-mounted into the build, which then runs without any network: no credential,
  CA or host path reaches a layer. `--online` skips it and lets pip inside the build reach the indexes (Docker-
  style; needs a network the image trusts). torch comes as the flavour's build: 2.13.0+cpu or 2.13.0+cu126
  (from TORCH_INDEX_URL, else the PyTorch index of the flavour, else any find-links folder pip knows).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]
import build_bentos  # noqa: E402
from containers import ROOT, ContainerError, image_exists, image_name, image_size, missing_tools, podman  # noqa: E402

BASE = "localhost/realtime-avatar-base:bookworm-2"  # -2: with libpython3.11 (Triton's Python backend loads it)
BUILD_BASE = "localhost/realtime-avatar-base:bookworm-2-build"  # plus binutils (strip), for the build stage
FLAVORS = {"cpu": "cpu", "cuda": "cu126"}  # flavour -> the torch wheel's local version label
TORCH = "2.13.0"
BUILD = ROOT / "build"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildError(Exception):
    """A one-line reason to stop, printed as `build_images: REASON` with exit status 2."""


def project_version() -> str:
    """What models/version.py states (read, not imported: this script runs without the project installed)."""
    return re.search(r'^VERSION = "(.+)"$', (ROOT / "models" / "version.py").read_text(), re.M).group(1)


def check_tools(base: str | None) -> None:
    if missing := missing_tools("podman"):
        raise BuildError(f"{missing[0]} is not installed (Debian/Ubuntu: apt-get install podman buildah runc; "
                         "with Docker instead, see the docs' Deployment page)")  # fmt: skip
    if base is None and os.geteuid() != 0:
        raise BuildError("making the Debian base image needs root (debootstrap); or give an image with Python 3.11: "
                         "BASE_IMAGE=python:3.11-slim")  # fmt: skip
    if base is None and not image_exists(BASE) and missing_tools("debootstrap"):
        raise BuildError("debootstrap is not installed (apt-get install debootstrap); or set BASE_IMAGE=IMAGE")


def make_base() -> str:
    """The Debian bookworm base (minbase + Python 3.11 and its shared library + CA certificates), made once with
    debootstrap, and its twin for the build stage (plus venv's pip wheels and binutils)."""
    if not (image_exists(BASE) and image_exists(BUILD_BASE)):
        debootstrap_bases()
    return BASE


def debootstrap_bases() -> None:
    print(f"making {BASE} with debootstrap (about a minute, once)")
    with tempfile.TemporaryDirectory(prefix="rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        packages = "python3,python3-venv,libpython3.11,ca-certificates"
        cmd = ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(root),
               os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")]  # fmt: skip
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            raise BuildError("debootstrap failed (is Debian's mirror reachable? DEBIAN_MIRROR=URL to change it)")
        # apt's lists and caches, docs, translations, glibc's iconv modules (Python has its own codecs): ~155 MB
        for junk in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale",
                     "usr/lib/x86_64-linux-gnu/gconv", "usr/lib/aarch64-linux-gnu/gconv"):  # fmt: skip
            shutil.rmtree(root / junk, ignore_errors=True)
        for old in (root / "var/cache/debconf").glob("*-old"):
            old.unlink()
        for empty in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
            (root / empty).mkdir(parents=True)
        (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        import_rootfs(root, BUILD_BASE)
        shutil.rmtree(root / "usr/share/python-wheels")  # what `python3 -m venv` installs: not needed at run time
        import_rootfs(root, BASE)
    print(f"making {BUILD_BASE}: adding binutils (strip) from Debian's mirror")
    with tempfile.TemporaryDirectory(prefix="build-base-") as tmp:
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {BUILD_BASE}\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils"
            " && rm -rf /var/lib/apt/lists/*\n"
        )
        podman("build", "--network", "host", "-t", BUILD_BASE, tmp, timeout=900)


def import_rootfs(root: Path, name: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    podman("import", "--change", f"ENV={PATH_ENV}", "--change", "ENV=LANG=C.UTF-8", "-", name, stdin=tar.stdout)
    tar.wait()


def check_base(base: str) -> None:
    probe = "import sys, venv, ensurepip; print(sys.version.split()[0])"
    try:
        version = podman("run", "--rm", "--network", "none", base, "python3", "-c", probe, timeout=600).strip()
    except ContainerError as e:
        raise BuildError(f"the base image {base} cannot run python3 with venv ({e}); Python 3.11 is needed") from None
    if not version.startswith("3.11."):
        raise BuildError(f"the base image {base} has Python {version}; Python 3.11 is needed")


def unpack_bento(unit: str, flavor: str) -> Path:
    """`make bento` for this unit, unpacked: the build context."""
    archive = build_bentos.build(unit, flavor, ROOT / "bentos" / "dist", build_bentos.packed_models())
    ctx = BUILD / "images" / f"{unit}-{flavor}"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(ctx, filter="data")
    return ctx


def no_deps_pins() -> list[str]:
    """The packages bentos/container_setup.sh installs without dependencies (its quoted name==version words)."""
    return re.findall(r'"([A-Za-z0-9_.-]+==[^"]+)"', (ROOT / "bentos" / "container_setup.sh").read_text())


def pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def fetch_torch(flavor: str, wheels: Path) -> None:
    """torch==2.13.0+LABEL: from the find-links folders and indexes pip knows, else the flavour's PyTorch index."""
    spec = f"torch=={TORCH}+{FLAVORS[flavor]}"
    if any(wheels.glob(f"torch-{TORCH}+{FLAVORS[flavor]}-*.whl")):
        return
    indexes = [os.environ["TORCH_INDEX_URL"]] if os.environ.get("TORCH_INDEX_URL") else []
    indexes.append(build_bentos.TORCH_INDEX[flavor])
    for extra in [None, *indexes]:
        args = ["download", "--no-deps", "--retries", "1", "--timeout", "20", spec, "-d", str(wheels)]
        if pip(*args, *(["--extra-index-url", extra] if extra else [])).returncode == 0:
            return
    raise BuildError(f"the {flavor} torch wheel ({spec}) is not reachable from {' or '.join(indexes)} or pip's "
                     "find-links; set TORCH_INDEX_URL or put the wheel in a find-links folder")  # fmt: skip


def fill_wheelhouse(ctx: Path, flavor: str) -> Path:
    """Every wheel the unit's requirements need, fetched (and any sdist built) by this machine's pip."""
    if platform.system() != "Linux" or sys.version_info[:2] != (3, 11):
        raise BuildError("a wheelhouse holds this machine's wheels: build on Linux with Python 3.11, or use --online")
    wheels = BUILD / "wheelhouse" / flavor
    wheels.mkdir(parents=True, exist_ok=True)
    reqs = (ctx / "env" / "python" / "requirements.txt").read_text()
    stamp = wheels / f".done-{hashlib.sha256((reqs + str(no_deps_pins())).encode()).hexdigest()[:16]}"
    if stamp.exists():
        return wheels
    lines = [line for line in reqs.splitlines() if not line.startswith("-")]  # index options: ours, below
    if any(line.startswith("torch==") for line in lines):
        fetch_torch(flavor, wheels)
        (Path(ctx) / "no-deps.txt").write_text("\n".join(no_deps_pins()) + "\n")
        if (r := pip("download", "--no-deps", "-r", str(ctx / "no-deps.txt"), "-d", str(wheels))).returncode:
            raise BuildError(f"pip could not fetch {' '.join(no_deps_pins())}: {r.stdout.strip().splitlines()[-1]}")
        (ctx / "no-deps.txt").unlink()
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        print(f"filling {wheels.relative_to(ROOT)} with this machine's pip")
        if (r := pip("wheel", "--find-links", str(wheels), "-r", f.name, "-w", str(wheels))).returncode:
            raise BuildError(f"pip could not fetch the requirements: {r.stdout.strip().splitlines()[-1]}")
    stamp.touch()
    return wheels


def build_image(unit: str, flavor: str, base: str, online: bool) -> str:
    ctx = unpack_bento(unit, flavor)
    name = image_name(unit, flavor)
    args = ["build", "-f", str(ctx / "src" / "bentos" / "Containerfile"), "--build-arg", f"BASE_IMAGE={base}"]
    args += ["--build-arg", f"VERSION={project_version()}"]
    if base == BASE:
        args += ["--build-arg", f"BUILD_IMAGE={BUILD_BASE}"]
    if online:
        args += ["--network", "host"]
    else:
        args += ["--network", "none", "-v", f"{fill_wheelhouse(ctx, flavor)}:/wheels:ro"]
    start = time.monotonic()
    print(f"building {name}")
    try:
        podman(*args, "-t", name, str(ctx), quiet=False, timeout=3600)
    except ContainerError as e:
        raise BuildError(f"building {name} failed ({e}); the build's output is above") from None
    print(f"built {name}: {image_size(name) / 1e6:.0f} MB unpacked, {time.monotonic() - start:.0f} s")
    return name


def main(argv: list[str] | None = None) -> int:
    try:
        return build(argv)
    except BuildError as e:
        print(f"build_images: {e}", file=sys.stderr)
        return 2


def build(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", nargs="+", default=["all"], help="all, api, tts, avatar (default: all)")
    ap.add_argument("--flavor", default=os.environ.get("FLAVOR") or "cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--base", default=os.environ.get("BASE_IMAGE") or None, help="base image with Python 3.11")
    ap.add_argument("--online", action="store_true", help="no wheelhouse: pip in the build reaches the indexes")
    args = ap.parse_args(argv)
    if args.flavor not in FLAVORS:
        raise BuildError(f"unknown flavor {args.flavor!r} (allowed: {', '.join(FLAVORS)})")
    if bad := [u for u in args.units if u not in build_bentos.UNITS]:
        raise BuildError(f"unknown unit {bad[0]!r} (allowed: {', '.join(build_bentos.UNITS)})")
    check_tools(args.base)
    base = args.base or make_base()
    check_base(base)
    for unit in args.units:
        build_image(unit, args.flavor, base, args.online)
    return 0


if __name__ == "__main__":
    sys.exit(main())
