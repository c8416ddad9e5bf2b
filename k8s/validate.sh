#!/usr/bin/env bash
# Validates the deployment without a cluster, in one command:
#   1. the derived manifests (KafkaTopics, KafkaUsers, playbook copy) match their sources;
#   2. `kustomize build` of every overlay, and of each optional component on the overlays;
#   3. every built object against the Kubernetes schemas and the vendored CRD schemas
#      (kubeconform, strict: unknown fields and unknown kinds fail), after proving on
#      k8s/schemas/testdata/broken.yaml that the validator does reject broken objects;
#   4. the alerts: `promtool check rules` and their unit tests; the dashboard's queries parse;
#   5. kube-score on every build: no critical finding;
#   6. hadolint on every services/*/Dockerfile;
#   7. `docker compose config` on deploy/compose.yaml;
#   8. the playbook ConfigMap passes the task engine's own check.
# Tools are installed on first use, at pinned versions, from package registries only: Go
# programs into .cache/bin (Go module proxy), Python ones into .cache/ops-venv (PyPI, see
# k8s/requirements.txt), promtool from Debian's `prometheus` package.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KUSTOMIZE_VERSION=v5.8.0
KUBECONFORM_VERSION=v0.8.0
KUBE_SCORE_VERSION=v1.20.0
COMPOSE_VERSION=v2.40.3
# The Kubernetes version the manifests are checked against (kubernetes-validate ships 1.25+).
KUBERNETES_VERSION=1.33.0
# Overlay + optional component combinations built and checked besides the overlays.
COMPONENT_VARIANTS="dev+keda prod+keda"

BIN=$ROOT/.cache/bin
WORK=$ROOT/.cache/k8s-validate
OPS_VENV=$ROOT/.cache/ops-venv
export PATH="$BIN:$PATH"
export PYTHONPATH="$ROOT:$ROOT/gen/python:$ROOT/libs"

step() { printf '\n== %s\n' "$*"; }

# go_tool NAME MODULE/PACKAGE VERSION: installs the program once per version.
go_tool() {
  local name=$1 package=$2 version=$3
  if [[ ! -x $BIN/$name || ! -f $BIN/.$name-$version ]]; then
    echo "installing $name $version (Go module proxy)"
    GOBIN=$BIN go install "$package@$version"
    rm -f "$BIN/.$name"-* && touch "$BIN/.$name-$version"
  fi
}

# Docker Compose's go.mod has `exclude` directives, which `go install pkg@version` refuses:
# download the module and build its command in a copy instead.
compose_command() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
    return
  fi
  if [[ ! -x $BIN/docker-compose || ! -f $BIN/.docker-compose-$COMPOSE_VERSION ]]; then
    echo "building docker-compose $COMPOSE_VERSION (Go module proxy)" >&2
    local source build
    source=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
      | "$OPS_VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    build=$(mktemp -d)
    cp -r "$source/." "$build" && chmod -R u+w "$build"
    (cd "$build" && go build -o "$BIN/docker-compose" ./cmd) >&2
    rm -rf "$build"
    rm -f "$BIN"/.docker-compose-* && touch "$BIN/.docker-compose-$COMPOSE_VERSION"
  fi
  echo "$BIN/docker-compose"
}

ensure_tools() {
  step "tools"
  mkdir -p "$BIN" "$WORK"
  go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
  go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
  go_tool kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION"
  if ! cmp -s k8s/requirements.txt "$OPS_VENV/requirements.txt" 2>/dev/null; then
    echo "installing k8s/requirements.txt into .cache/ops-venv (PyPI)"
    rm -rf "$OPS_VENV"
    python3 -m venv "$OPS_VENV"
    "$OPS_VENV/bin/pip" install -q -r k8s/requirements.txt
    cp k8s/requirements.txt "$OPS_VENV/requirements.txt"
  fi
  if ! command -v promtool >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "promtool is missing: run \`sudo apt-get install prometheus\` (Debian) and retry" >&2
      exit 1
    fi
    echo "installing promtool (Debian package prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  # The playbook check and the generator run in the project's own virtualenv.
  make -s deps protos
  echo "kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION, kube-score $KUBE_SCORE_VERSION,"
  echo "$(promtool --version 2>&1 | head -1), $("$OPS_VENV/bin/hadolint" --version)"
}

check_generated() {
  step "derived manifests match libs/policykit/topics.yaml and the playbook"
  .venv/bin/python k8s/generate.py --check
  echo "k8s/base/kafka/{topics,users}.yaml and the playbook copy are up to date"
}

# Writes $WORK/build/<variant>.yaml for every overlay and every overlay+component variant.
build_variants() {
  step "kustomize build"
  rm -rf "$WORK/build" "$WORK/variants"
  mkdir -p "$WORK/build" "$WORK/variants"
  local overlay name variant component dir
  for overlay in k8s/overlays/*/; do
    name=$(basename "$overlay")
    kustomize build "$overlay" > "$WORK/build/$name.yaml"
    echo "$name: $(grep -c '^kind:' "$WORK/build/$name.yaml") objects"
  done
  for variant in $COMPONENT_VARIANTS; do
    overlay=${variant%%+*} component=${variant#*+}
    dir=$WORK/variants/$variant
    mkdir -p "$dir"
    cat > "$dir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$dir" "k8s/overlays/$overlay")
components:
  - $(realpath --relative-to="$dir" "k8s/components/$component")
EOF
    kustomize build "$dir" > "$WORK/build/$variant.yaml"
    echo "$variant: $(grep -c '^kind:' "$WORK/build/$variant.yaml") objects"
  done
}

kubeconform_offline() {
  kubeconform -strict -summary -kubernetes-version "$KUBERNETES_VERSION" \
    -schema-location "$WORK/schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$ROOT/k8s/schemas/crds/{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json" \
    "$@"
}

validate_schemas() {
  step "schemas (kubeconform, offline, Kubernetes $KUBERNETES_VERSION)"
  "$OPS_VENV/bin/python" k8s/schemas/generate.py core \
    --kubernetes-version "$KUBERNETES_VERSION" --out "$WORK/schemas" >/dev/null
  # First the proof that validation validates: every broken object must be rejected.
  local expected rejected
  expected=$(grep -c '^kind:' k8s/schemas/testdata/broken.yaml)
  rejected=$(kubeconform_offline -output json k8s/schemas/testdata/broken.yaml \
    | "$OPS_VENV/bin/python" -c 'import json, sys
print(sum(r["status"] in ("statusInvalid", "statusError") for r in json.load(sys.stdin)["resources"]))' \
    || true)
  if [[ $rejected != "$expected" ]]; then
    echo "kubeconform rejected $rejected of the $expected broken objects in k8s/schemas/testdata/broken.yaml: it is not validating" >&2
    exit 1
  fi
  echo "testdata/broken.yaml: all $expected deliberately broken objects rejected"
  kubeconform_offline "$WORK"/build/*.yaml
}

check_monitoring() {
  step "alerts and dashboard (promtool)"
  local rules=$WORK/rules
  rm -rf "$rules" && mkdir -p "$rules"
  "$OPS_VENV/bin/python" k8s/checks.py rules "$WORK/build/prod.yaml" "$rules" >/dev/null
  promtool check rules "$rules"/*.rules.yaml
  cp k8s/components/monitoring/rules-test.yaml "$rules/"
  promtool test rules "$rules/rules-test.yaml"
  "$OPS_VENV/bin/python" k8s/checks.py dashboard \
    k8s/components/monitoring/dashboards/policy-platform.json "$rules/dashboard.queries.yaml"
  promtool check rules "$rules/dashboard.queries.yaml"
}

score_manifests() {
  step "kube-score (fails on critical findings; warnings are shown)"
  local build report status failed=0
  for build in "$WORK"/build/*.yaml; do
    status=0
    report=$(kube-score score --kubernetes-version "v${KUBERNETES_VERSION%.*}" \
      --output-format ci --enable-optional-test container-seccomp-profile \
      --enable-optional-test container-ports-check "$build") || status=$?
    echo "$(basename "$build" .yaml): $(grep -c '^\[OK\]' <<<"$report") checks passed"
    [[ -z $report ]] || grep -v -e '^\[OK\]' -e '^\[SKIPPED\]' <<<"$report" || true
    [[ $status -eq 0 ]] || failed=1
  done
  [[ $failed -eq 0 ]] || { echo "kube-score found critical problems" >&2; exit 1; }
}

lint_dockerfiles() {
  step "Dockerfiles (hadolint)"
  "$OPS_VENV/bin/hadolint" --no-color services/*/Dockerfile
  echo "$(ls services/*/Dockerfile | tr '\n' ' ')clean"
}

check_compose() {
  step "deploy/compose.yaml (docker compose config)"
  local compose
  compose=$(compose_command)
  $compose -f deploy/compose.yaml config --quiet
  echo "valid ($compose)"
}

check_playbook() {
  step "playbook ConfigMap (the task engine's own check)"
  local playbook
  for playbook in k8s/base/communication/playbooks/*.yaml; do
    .venv/bin/python -m services.communication.playbook "$playbook"
  done
}

ensure_tools
check_generated
build_variants
validate_schemas
check_monitoring
score_manifests
lint_dockerfiles
check_compose
check_playbook
step "k8s: all checks passed"
