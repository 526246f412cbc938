#!/usr/bin/env bash
# Deploy the split bentos to GKE: TTS and avatar (cuda) on the GPU node pool, the API (CPU) in front of them.
#   scripts/deploy_gke.sh --project P [--region us-central1] [--repo REPO] [--tag TAG] [--namespace NS] [--out DIR] [--dry-run]
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
image_steps tts cuda "$IMAGE_TTS"
image_steps avatar cuda "$IMAGE_AVATAR"
image_steps api cpu "$IMAGE_API"
render configs/deploy/gke.yaml "$OUT/gke.yaml" NAMESPACE IMAGE_TTS IMAGE_AVATAR IMAGE_API
# The TTS and render autoscalers read BentoML's requests-in-progress gauge from Managed Service for Prometheus
# (managed collection: on by default in new clusters; else gcloud container clusters update CLUSTER
# --enable-managed-prometheus) through the Custom Metrics Stackdriver Adapter, installed here (its service account
# needs roles/monitoring.viewer with Workload Identity).
run kubectl apply -f "$METRICS_ADAPTER"
run kubectl apply -f "$OUT/gke.yaml"
