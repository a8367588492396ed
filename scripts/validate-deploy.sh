#!/usr/bin/env bash
# Checks the deploy files against the schemas the validators carry (nothing is
# downloaded while they run): the Kubernetes manifests with kubernetes-validate
# (strict: an unknown field fails), the compose file against the compose
# specification. A broken manifest and a broken compose file must fail, so a validator
# that passes everything is caught too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_deploy_validators
KUBERNETES_VERSION=1.34.0

step "kubernetes manifests (kubernetes-validate, Kubernetes $KUBERNETES_VERSION schemas)"
"$KOZOMOL_DEPLOY_VALIDATORS/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" \
    deploy/kubernetes/*.yaml

step "compose file (check-jsonschema, the compose specification)"
"$KOZOMOL_DEPLOY_VALIDATORS/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

step "the validators refuse broken files"
broken="$(mktemp -d)"
trap 'rm -rf "$broken"' EXIT
# A probe's port misspelt (an unknown field) in an otherwise valid manifest.
sed 's/containerPort: 8080/containerPrt: 8080/' deploy/kubernetes/api.yaml > "$broken/api.yaml"
cmp -s deploy/kubernetes/api.yaml "$broken/api.yaml" && { echo "the manifest breakage no longer applies" >&2; exit 1; }
if "$KOZOMOL_DEPLOY_VALIDATORS/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" \
    "$broken/api.yaml" >/dev/null 2>&1; then
    echo "kubernetes-validate passed a manifest with an unknown field" >&2
    exit 1
fi
# A service's key misspelt.
sed 's/^    command: \["run", "api"/    comand: ["run", "api"/' deploy/compose.yaml > "$broken/compose.yaml"
cmp -s deploy/compose.yaml "$broken/compose.yaml" && { echo "the compose breakage no longer applies" >&2; exit 1; }
if "$KOZOMOL_DEPLOY_VALIDATORS/check-jsonschema" --builtin-schema vendor.compose-spec \
    "$broken/compose.yaml" >/dev/null 2>&1; then
    echo "check-jsonschema passed a compose file with an unknown service key" >&2
    exit 1
fi
echo "deploy files valid; broken copies refused"
