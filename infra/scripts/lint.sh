#!/usr/bin/env bash
# Lint the container images and Kubernetes manifests offline: hadolint on the
# Dockerfiles, kubernetes-validate (strict) on every manifest and on each
# rendered overlay, and checkov on the Dockerfiles, manifests and overlays.
#
# The overlays need the gitignored secrets/*/*.env files, so they are rendered
# from a copy of infra/ in which those files are the *.env.example
# placeholders: real secret values are never read.
#
# Environment: INFRA_BIN (.venv-infra/bin), KUBERNETES_VERSION (1.37.0).
set -euo pipefail

bin=${INFRA_BIN:-.venv-infra/bin}
kubernetes_version=${KUBERNETES_VERSION:-1.37.0}

for tool in hadolint kubernetes-validate checkov; do
  if [[ ! -x ${bin}/${tool} ]]; then
    echo "Error: ${bin}/${tool} not found: run 'make .venv-infra/.installed' first." >&2
    exit 1
  fi
done
bin=$(cd "$bin" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r infra "$work/infra"
while IFS= read -r example; do
  cp "$example" "${example%.example}"
done < <(find "$work/infra/k8s/secrets" -name '*.env.example')

echo "== hadolint"
"${bin}/hadolint" infra/docker/Dockerfile infra/docker/Dockerfile.gpu

echo "== kubernetes-validate (Kubernetes ${kubernetes_version}, strict)"
mapfile -t manifests < <(find infra/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
"${bin}/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "${manifests[@]}"

if command -v kustomize >/dev/null; then
  render=(kustomize build)
elif command -v kubectl >/dev/null; then
  render=(kubectl kustomize)
else
  render=()
  echo "NOTE: neither kustomize nor kubectl is installed: the overlays were not rendered." >&2
fi
if ((${#render[@]})); then
  for overlay in dev prod dev-pipelines prod-pipelines; do
    "${render[@]}" "$work/infra/k8s/overlays/${overlay}" >"$work/${overlay}.yaml"
    "${bin}/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "$work/${overlay}.yaml"
    echo "overlay ${overlay}: rendered and valid"
  done
fi

echo "== checkov"
# No calls home: no policy download from Prisma Cloud, no update check on PyPI.
(cd "$work" && CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
  "${bin}/checkov" -d infra --skip-download --framework kubernetes kustomize dockerfile --compact --quiet)
