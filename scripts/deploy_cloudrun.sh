#!/usr/bin/env bash
# Deploy the all-in-one bento (cuda flavour) to Cloud Run with one NVIDIA L4, min instances 0.
#   scripts/deploy_cloudrun.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--service NAME] [--out DIR] [--dry-run]
# --dry-run renders the manifest and the Cloud Build config into --out and prints the commands, running none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deploy_common.sh
SERVICE="realtime-avatar"
parse_args deploy_cloudrun --service SERVICE "$@"
[[ $RUNTIME == bentoml ]] ||
  { echo "deploy_cloudrun: Cloud Run serves the all-in-one bento; --runtime triton is for GKE (deploy_gke.sh)" >&2; exit 2; }
IMAGE="$REGION-docker.pkg.dev/$PROJECT/$REPO/realtime-avatar-cuda:$TAG"
image_steps all cuda "$IMAGE"
render configs/deploy/cloudrun.yaml "$OUT/cloudrun.yaml" SERVICE IMAGE
run gcloud run services replace "$OUT/cloudrun.yaml" --project "$PROJECT" --region "$REGION"
