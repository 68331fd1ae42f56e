#!/usr/bin/env bash
# Validates the manifests in deploy/k8s (or the files/directories given) with kubeconform,
# offline: -strict (unknown fields and duplicate keys are errors), schemas only from
# deploy/k8s/schemas (no default location, nothing downloaded), and a kind without a schema
# there is an error too. kustomization.yaml (not a Kubernetes resource) and schemas/ are
# skipped. kubeconform: $KUBECONFORM, else var/tools/bin/kubeconform (`make k8s-tools`),
# else the PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kubeconform=${KUBECONFORM:-}
if [ -z "$kubeconform" ]; then
  if [ -x "$root/var/tools/bin/kubeconform" ]; then
    kubeconform=$root/var/tools/bin/kubeconform
  else
    kubeconform=$(command -v kubeconform || true)
  fi
fi
if [ -z "$kubeconform" ]; then
  echo "validate: kubeconform is not installed; run: make k8s-tools" >&2
  exit 2
fi
[ $# -gt 0 ] || set -- "$here"
exec "$kubeconform" -strict -summary -output text \
  -schema-location "$here/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  -ignore-filename-pattern '/schemas/' -ignore-filename-pattern 'kustomization\.yaml$' \
  "$@"
