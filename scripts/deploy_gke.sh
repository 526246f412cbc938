#!/usr/bin/env bash
# Deploy the split bentos to GKE: TTS and avatar (cuda) on the GPU node pool, the API (CPU) in front of them.
#   scripts/deploy_gke.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--namespace NS] [--out DIR] [--dry-run]
# Assumes a cluster with an nvidia-l4 node pool and kubectl pointed at it (gcloud container clusters get-credentials).
# --dry-run renders the manifests and Cloud Build configs into --out and prints the commands, running none.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT="" REGION="us-central1" REPO="realtime-avatar" TAG="latest" NAMESPACE="realtime-avatar" OUT="build/deploy" DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --project) PROJECT=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --repo) REPO=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --namespace) NAMESPACE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) echo "deploy_gke: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $PROJECT ]] || { echo "deploy_gke: --project is required" >&2; exit 2; }
source scripts/deploy_common.sh
mkdir -p "$OUT"
REGISTRY="$REGION-docker.pkg.dev/$PROJECT/$REPO"
IMAGE_TTS="$REGISTRY/realtime-avatar-tts-cuda:$TAG"
IMAGE_AVATAR="$REGISTRY/realtime-avatar-render-cuda:$TAG"
IMAGE_API="$REGISTRY/realtime-avatar-api:$TAG"
image_steps tts cuda "$IMAGE_TTS"
image_steps avatar cuda "$IMAGE_AVATAR"
image_steps api cpu "$IMAGE_API"
render configs/deploy/gke.yaml "$OUT/gke.yaml" NAMESPACE IMAGE_TTS IMAGE_AVATAR IMAGE_API
run kubectl apply -f "$OUT/gke.yaml"
