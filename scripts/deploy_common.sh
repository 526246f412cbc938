# Shared by deploy_cloudrun.sh and deploy_gke.sh (sourced, not run).
PY=.venv/bin/python
[[ -x $PY ]] || PY=python3
PROJECT="" REGION="us-central1" REPO="realtime-avatar" TAG="latest" OUT="build/deploy" DRY_RUN=0 RUNTIME="bentoml"

# parse_args SCRIPT EXTRA_OPTION EXTRA_VARIABLE "$@": the options both deploy scripts take, plus one of their own.
parse_args() {
  local script=$1 extra_opt=$2 extra_var=$3
  shift 3
  while [[ $# -gt 0 ]]; do
    case $1 in
      --project) PROJECT=$2; shift 2 ;;
      --region) REGION=$2; shift 2 ;;
      --repo) REPO=$2; shift 2 ;;
      --tag) TAG=$2; shift 2 ;;
      --out) OUT=$2; shift 2 ;;
      --dry-run) DRY_RUN=1; shift ;;
      --runtime) RUNTIME=$2; shift 2 ;;
      "$extra_opt") printf -v "$extra_var" '%s' "$2"; shift 2 ;;
      *) echo "$script: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [[ -n $PROJECT ]] || { echo "$script: --project is required" >&2; exit 2; }
  [[ $RUNTIME == bentoml || $RUNTIME == triton ]] ||
    { echo "$script: --runtime is bentoml or triton, not $RUNTIME" >&2; exit 2; }
  mkdir -p "$OUT"
}
# run CMD...: prints the command; runs it unless --dry-run was given.
run() {
  printf '+ %s\n' "$*"
  if [[ $DRY_RUN == 0 ]]; then "$@"; fi
}

# render TEMPLATE OUT VAR...: substitutes ${VAR} for each named variable (nothing else is touched).
render() {
  local template=$1 out=$2
  shift 2
  local text
  text=$(cat "$template")
  for var in "$@"; do
    text=${text//\$\{$var\}/${!var}}
  done
  printf '%s\n' "$text" > "$out"
  echo "rendered $out"
}

# The version models/version.py states (the images' org.opencontainers.image.version label).
project_version() {
  sed -n 's/^VERSION = "\(.*\)"$/\1/p' models/version.py
}

# image_steps UNIT FLAVOR IMAGE: build the bento, unpack it (the build context), build it with its own
# Containerfile (bentos/Containerfile, the file `make image` builds and the container tests run) and push, with
# Cloud Build. The base stays the public python:3.11-slim (the Containerfile's default BASE_IMAGE).
image_steps() {
  local unit=$1 flavor=$2 image=$3 name ctx
  name=$("$PY" - "$unit" "$flavor" <<'PY'
import sys, yaml
unit, flavor = sys.argv[1:]
path = "bentofile.yaml" if unit == "all" else f"bentos/{unit}/bentofile.yaml"
name = yaml.safe_load(open(path))["name"]
print(name if flavor == "cpu" else f"{name}-{flavor}")
PY
)
  ctx="$OUT/context-$unit"
  run "$PY" scripts/build_bentos.py --units "$unit" --flavor "$flavor" --out bentos/dist
  run mkdir -p "$ctx"
  run tar -xf "bentos/dist/$name.bento" -C "$ctx"
  cat > "$OUT/cloudbuild-$unit.yaml" <<YAML
steps:
  - name: gcr.io/cloud-builders/docker
    args: ["build", "-f", "src/bentos/Containerfile", "--build-arg", "VERSION=$(project_version)", "-t", "$image", "."]
images: ["$image"]
timeout: 3600s
YAML
  echo "rendered $OUT/cloudbuild-$unit.yaml"
  run gcloud builds submit "$ctx" --project "$PROJECT" --config "$OUT/cloudbuild-$unit.yaml"
}
