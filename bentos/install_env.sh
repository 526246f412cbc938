#!/bin/sh
# Builds /app/.venv inside an image (bentos/Containerfile): the bento's requirements with the pins of
# pyproject.toml, then the no-deps installs of bentos/container_setup.sh, exactly as scripts/setup.sh does on a
# developer machine; then drops what a server never reads.
#   install_env.sh REQUIREMENTS WHEELHOUSE   (WHEELHOUSE absent or empty: pip uses the indexes in REQUIREMENTS)
set -eu
REQS=$1 WHEELS=$2 VENV=/app/.venv

command -v python3 >/dev/null || { echo "realtime-avatar: the base image has no python3 (Python 3.11 is needed)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else
    f"realtime-avatar: the base image has Python {sys.version.split()[0]}; Python 3.11 is needed")'
python3 -c 'import venv, ensurepip' 2>/dev/null ||
    { echo "realtime-avatar: the base image's Python has no venv/ensurepip (Debian: python3-venv)" >&2; exit 1; }
python3 -m venv "$VENV"
export PATH="$VENV/bin:$PATH"

# No bytecode here: warm_start.py compiles what a start imports (all of it would be ~350 MB more).
PIP="pip install --no-compile --no-cache-dir --disable-pip-version-check --progress-bar off"
if [ -n "$(ls "$WHEELS" 2>/dev/null)" ]; then
    echo "installing from the wheelhouse at $WHEELS (no network)"
    PIP="$PIP --no-index --find-links $WHEELS"
fi
$PIP -r "$REQS"
if grep -q '^torch==' "$REQS"; then  # the model units: MediaPipe, torchaudio, torchcodec without dependencies
    PIP="$PIP" sh "$(dirname "$0")/container_setup.sh"
fi

# What a server never reads: test suites (~260 MB in the model units), C and Cython sources and headers
# (~50 MB), torch's test binaries and protoc, and pip itself (nothing installs at run time), with setuptools where no requirement needs it.
SITE=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
find "$SITE" -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +
find "$SITE" -type f \( -name '*.pxd' -o -name '*.pyx' -o -name '*.h' -o -name '*.hpp' -o -name '*.cuh' -o -name '*.c' \
    -o -name '*.cpp' \) -delete  # C/C++/Cython sources and headers (not .pyi stubs: lazy_loader reads librosa's)
rm -rf "$SITE/torch/include" "$SITE/torch/share/cmake"
find "$SITE/torch/bin" -type f ! -name torch_shm_manager -delete 2>/dev/null || true  # import torch needs that one
if [ -z "$(pip show setuptools 2>/dev/null | sed -n 's/^Required-by: *//p')" ]; then
    python -m pip uninstall -q -y setuptools  # venv's own copy, which no requirement needs
fi
python -m pip uninstall -q -y pip

# Symbol tables of torch's and llvmlite's libraries (~120 MB; dynamic symbols stay). Not the libraries that
# auditwheel rewrote with patchelf (*.libs/): strip can break those.
command -v strip >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils; } \
    >/dev/null 2>&1 || echo "no strip here (and no network for binutils): libraries keep their symbol tables"
if command -v strip >/dev/null; then
    for lib in "$SITE"/torch/lib/libtorch*.so "$SITE"/llvmlite/binding/libllvmlite.so; do
        [ -f "$lib" ] && strip --strip-unneeded "$lib"
    done
fi
if [ -d "$SITE/torch" ]; then  # everything still imports and torch computes after the cuts
    python -c "import torch, mediapipe, piper, av, cv2, TTS.tts.models.xtts, faster_whisper
assert float(torch.ones(3) @ torch.ones(3)) == 3; print('slimmed environment ok')"
fi
find "$VENV" -name __pycache__ -type d -exec rm -rf {} +  # the checks above wrote some
