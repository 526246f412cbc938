#!/usr/bin/env bash
# make serve-triton: Triton serving both runners (services_triton) and the API over it, in the foreground; Ctrl-C
# stops both.   scripts/serve_triton.sh API_PORT TRITON_PORT   (Triton: TRITON_PORT HTTP, +1 gRPC, +2 metrics)
set -euo pipefail
cd "$(dirname "$0")/.."
API_PORT=${1:-3000} TRITON_PORT=${2:-8000}
if [[ ! -x .venv-triton/bin/python ]]; then
  echo "serve-triton: no .venv-triton (make setup builds it from a system Python 3.11, e.g. Debian's; TRITON_PYTHON=PATH)" >&2
  exit 1
fi
.venv-triton/bin/python -m services_triton --http-port "$TRITON_PORT" --grpc-port $((TRITON_PORT + 1)) \
  --metrics-port $((TRITON_PORT + 2)) &
TRITON=$!
trap 'kill $TRITON 2>/dev/null; wait $TRITON 2>/dev/null' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$TRITON_PORT/v2/models/tts_control/ready" >/dev/null && break
  kill -0 $TRITON 2>/dev/null || { echo "serve-triton: Triton exited; its log is above" >&2; exit 1; }
  sleep 0.5
done
echo "Triton is ready on :$TRITON_PORT (metrics :$((TRITON_PORT + 2))/metrics); the API starts on :$API_PORT"
AVATAR_TTS_URL="triton://127.0.0.1:$TRITON_PORT" AVATAR_RENDER_URL="triton://127.0.0.1:$TRITON_PORT" \
  .venv/bin/bentoml serve . --port "$API_PORT"
