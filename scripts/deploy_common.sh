# Shared by deploy_cloudrun.sh and deploy_gke.sh (sourced, not run).
PY=.venv/bin/python
[[ -x $PY ]] || PY=python3
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

# image_steps UNIT FLAVOR IMAGE: build the bento, unpack its Docker context, build and push with Cloud Build.
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
    args: ["build", "-f", "env/docker/Dockerfile", "-t", "$image", "."]
images: ["$image"]
timeout: 3600s
YAML
  echo "rendered $OUT/cloudbuild-$unit.yaml"
  run gcloud builds submit "$ctx" --project "$PROJECT" --config "$OUT/cloudbuild-$unit.yaml"
}
