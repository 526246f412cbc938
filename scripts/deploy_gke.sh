#!/usr/bin/env bash
# Deploy the split bentos to GKE: TTS and avatar (cuda) on the GPU node pool, the API (CPU) in front of them.
#   scripts/deploy_gke.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--namespace NS] [--out DIR]
#                         [--runtime bentoml|triton] [--dry-run]
# --runtime triton: the TTS and render units run Triton (one image, services_triton) and scale on its queue metric.
# Assumes a cluster with an nvidia-l4 node pool and kubectl pointed at it (gcloud container clusters get-credentials).
# --dry-run renders the manifests and Cloud Build configs into --out and prints the commands, running none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deploy_common.sh
NAMESPACE="realtime-avatar"
METRICS_ADAPTER="https://raw.githubusercontent.com/GoogleCloudPlatform/k8s-stackdriver/master/custom-metrics-stackdriver-adapter/deploy/production/adapter_new_resource_model.yaml"
parse_args deploy_gke --namespace NAMESPACE "$@"
REGISTRY="$REGION-docker.pkg.dev/$PROJECT/$REPO"
IMAGE_TTS="$REGISTRY/realtime-avatar-tts-cuda:$TAG"
IMAGE_AVATAR="$REGISTRY/realtime-avatar-render-cuda:$TAG"
IMAGE_API="$REGISTRY/realtime-avatar-api:$TAG"
IMAGE_TRITON="$REGISTRY/realtime-avatar-triton-cuda:$TAG"
TTS_URL="http://realtime-avatar-tts:3000" RENDER_URL="http://realtime-avatar-render:3000"
if [[ $RUNTIME == triton ]]; then
  TTS_URL="triton://realtime-avatar-tts:8000" RENDER_URL="triton://realtime-avatar-render:8000"
  image_steps triton cuda "$IMAGE_TRITON"
else
  image_steps tts cuda "$IMAGE_TTS"
  image_steps avatar cuda "$IMAGE_AVATAR"
fi
image_steps api cpu "$IMAGE_API"
render configs/deploy/gke.yaml "$OUT/gke.yaml" NAMESPACE IMAGE_TTS IMAGE_AVATAR IMAGE_API TTS_URL RENDER_URL
if [[ $RUNTIME == triton ]]; then  # its objects replace their namesakes (kind and name) in gke.yaml
  render configs/deploy/gke-triton.yaml "$OUT/gke-triton.yaml" NAMESPACE IMAGE_TRITON
  "$PY" - "$OUT/gke.yaml" "$OUT/gke-triton.yaml" <<'PY'
import sys, yaml
base, over = (list(yaml.safe_load_all(open(p))) for p in sys.argv[1:])
key = lambda d: (d["kind"], d["metadata"]["name"])
new = {key(d): d for d in over if d}
docs = [new.pop(key(d), d) for d in base if d] + list(new.values())
yaml.safe_dump_all(docs, open(sys.argv[1], "w"), sort_keys=False)
print(f"replaced with Triton's: {len(over) - len(new)} objects, added {len(new)}")
PY
fi
# The TTS and render autoscalers read BentoML's requests-in-progress gauge from Managed Service for Prometheus
# (managed collection: on by default in new clusters; else gcloud container clusters update CLUSTER
# --enable-managed-prometheus) through the Custom Metrics Stackdriver Adapter, installed here (its service account
# needs roles/monitoring.viewer with Workload Identity).
run kubectl apply -f "$METRICS_ADAPTER"
run kubectl apply -f "$OUT/gke.yaml"
