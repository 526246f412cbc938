#!/usr/bin/env bash
# Deploy the all-in-one bento (cuda flavour) to Cloud Run with one NVIDIA L4, min instances 0.
#   scripts/deploy_cloudrun.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--service NAME] [--out DIR] [--dry-run]
# --dry-run renders the manifest and the Cloud Build config into --out and prints the commands, running none.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT="" REGION="us-central1" REPO="realtime-avatar" TAG="latest" SERVICE="realtime-avatar" OUT="build/deploy" DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --project) PROJECT=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --repo) REPO=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --service) SERVICE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) echo "deploy_cloudrun: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $PROJECT ]] || { echo "deploy_cloudrun: --project is required" >&2; exit 2; }
source scripts/deploy_common.sh
mkdir -p "$OUT"
IMAGE="$REGION-docker.pkg.dev/$PROJECT/$REPO/realtime-avatar-cuda:$TAG"
image_steps all cuda "$IMAGE"
render configs/deploy/cloudrun.yaml "$OUT/cloudrun.yaml" SERVICE IMAGE
run gcloud run services replace "$OUT/cloudrun.yaml" --project "$PROJECT" --region "$REGION"
