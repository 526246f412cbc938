#!/usr/bin/env bash
# Deploy the split bentos to GKE: TTS and avatar (cuda) on the GPU node pool, the API (CPU) in front of them.
#   scripts/deploy_gke.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--namespace NS] [--out DIR] [--dry-run]
# Assumes a cluster with an nvidia-l4 node pool and kubectl pointed at it (gcloud container clusters get-credentials).
# --dry-run renders the manifests and Cloud Build configs into --out and prints the commands, running none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deploy_common.sh
NAMESPACE="realtime-avatar"
parse_args deploy_gke --namespace NAMESPACE "$@"
REGISTRY="$REGION-docker.pkg.dev/$PROJECT/$REPO"
IMAGE_TTS="$REGISTRY/realtime-avatar-tts-cuda:$TAG"
IMAGE_AVATAR="$REGISTRY/realtime-avatar-render-cuda:$TAG"
IMAGE_API="$REGISTRY/realtime-avatar-api:$TAG"
image_steps tts cuda "$IMAGE_TTS"
image_steps avatar cuda "$IMAGE_AVATAR"
image_steps api cpu "$IMAGE_API"
render configs/deploy/gke.yaml "$OUT/gke.yaml" NAMESPACE IMAGE_TTS IMAGE_AVATAR IMAGE_API
run kubectl apply -f "$OUT/gke.yaml"
