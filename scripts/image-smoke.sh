#!/usr/bin/env bash
# Build the container image from the Dockerfile and check that it serves: `make image-smoke`, run by CI.
#
# With a Docker daemon: `docker build`, then `docker run` of scripts/image_smoke_check.py in the image.
# Without one (CI, this sandbox): `buildah bud --isolation chroot` on vfs storage, then `buildah run`
# (containers cannot be started here; buildah run executes the image's own interpreter and files).
# Where the base image cannot be pulled (no registry reachable), a stand-in for python:3.11-slim-bookworm
# is built from Debian packages with mmdebstrap and the build says so.
#
# The check inside the image generates the demo data, starts `inferflow serve`, waits for
# /health/ready, sends a PointWise request to the demo model and compares every pctr with ONNX Runtime
# run directly on the same features. Prints the image size and the build time.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${IMAGE_TAG:-localhost/inferflow:smoke}
BASE=python:3.11-slim-bookworm
STANDIN=localhost/inferflow-python-standin:3.11-bookworm
CHECK=/opt/inferflow-smoke/check.py
build_args=()
# A host that reaches PyPI through its own CA bundle (PIP_CERT) lends it to the build's pip.
volumes=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  volumes+=(--volume "$PIP_CERT:/etc/inferflow-build-ca.crt:ro")
  build_args+=(--build-arg PIP_CERT=/etc/inferflow-build-ca.crt)
fi

say() { printf '== image-smoke: %s\n' "$*"; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "docker build $TAG"
  t0=$(date +%s)
  docker build -q -t "$TAG" "${build_args[@]}" . >/dev/null
  say "built in $(( $(date +%s) - t0 ))s; size $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
  docker run --rm --network host -v "$PWD/scripts/image_smoke_check.py:$CHECK:ro" --entrypoint python "$TAG" "$CHECK"
  docker run --rm "$TAG" demo | grep -E "targets scored|demo finished"
  exit 0
fi

command -v buildah >/dev/null 2>&1 || { echo "image-smoke: neither a docker daemon nor buildah (apt-get install buildah)"; exit 1; }
B=(buildah --storage-driver vfs)

base_arg=()
if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1 \
   && ! timeout 120 "${B[@]}" pull -q "docker.io/library/$BASE" >/dev/null 2>&1; then
  if ! "${B[@]}" inspect --type image "$STANDIN" >/dev/null 2>&1; then
    say "base image $BASE cannot be pulled (no registry): building a stand-in from Debian packages (mmdebstrap)"
    command -v mmdebstrap >/dev/null 2>&1 || { echo "image-smoke: mmdebstrap missing (apt-get install mmdebstrap)"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # python:3.11-slim puts `python` on PATH in /usr/local/bin; the stand-in links Debian's python3.11 there.
    # Like the official slim images: no documentation, manual pages or translations.
    mmdebstrap --quiet --variant=minbase --include=python3.11,python3.11-venv,ca-certificates,passwd \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='ln -sf /usr/bin/python3.11 "$1/usr/local/bin/python"' \
      --customize-hook='ln -sf /usr/bin/python3.11 "$1/usr/local/bin/python3"' \
      --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*' \
      bookworm "$tmp/base.tar"
    ctr=$("${B[@]}" from scratch)
    "${B[@]}" add --quiet "$ctr" "$tmp/base.tar" / >/dev/null
    "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd python3 "$ctr"
    "${B[@]}" commit --quiet "$ctr" "$STANDIN" >/dev/null
    "${B[@]}" rm "$ctr" >/dev/null
  fi
  say "using the stand-in base $STANDIN (not the official $BASE)"
  base_arg=(--build-arg "PYTHON_IMAGE=$STANDIN" --pull=never)
fi

say "buildah bud $TAG"
t0=$(date +%s)
"${B[@]}" bud --quiet --format docker --isolation chroot --layers=false "${base_arg[@]}" "${build_args[@]}" "${volumes[@]}" \
  -t "$TAG" . >/dev/null
built=$(( $(date +%s) - t0 ))
say "built in ${built}s; image size $("${B[@]}" images --format '{{.Size}}' "$TAG")" \
    "(base $("${B[@]}" images --format '{{.Size}}' "${base_arg[1]#PYTHON_IMAGE=}" 2>/dev/null || echo "$BASE"))"

ctr=$("${B[@]}" from --pull=never "$TAG")
cleanup() { "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
user=$("${B[@]}" inspect --type container --format '{{.OCIv1.Config.User}}' "$ctr")
say "running the check in the image as user ${user:-root}"
"${B[@]}" run --isolation chroot --user "${user:-0}" \
  --volume "$PWD/scripts/image_smoke_check.py:$CHECK:ro" "$ctr" -- python "$CHECK"
say "inferflow demo in the image"
"${B[@]}" run --isolation chroot --user "${user:-0}" "$ctr" -- inferflow demo > "${TMPDIR:-/tmp}/image-demo.log" 2>&1 \
  || { tail -30 "${TMPDIR:-/tmp}/image-demo.log"; exit 1; }
grep -E "targets scored|demo finished" "${TMPDIR:-/tmp}/image-demo.log"
# Keep the tagged image and the stand-in base; drop what earlier builds left behind (vfs copies are large).
"${B[@]}" rmi --prune >/dev/null 2>&1 || true
