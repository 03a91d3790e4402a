#!/usr/bin/env bash
# `make lock`: resolve every third-party package the repository installs (core, plugins, test tools, the
# MLServer test venv, the build backend) once, into requirements/lock.txt. Every install uses it as a
# constraints file: scripts/test.sh, scripts/demo.sh, the Dockerfile and therefore .ci/run.
#
# The separate venvs get their own locks the same way: requirements/feast-lock.in -> feast-lock.txt (.venv-feast:
# Feast pins pandas<3 and pulls a web stack; it stays out of the main lock) and requirements/triton-lock.in ->
# triton-lock.txt (.venv-triton: nvidia-pytriton's Python backend stub needs numpy<2).
#
#   bash scripts/lock.sh             re-resolve, keeping the pins that still satisfy the inputs
#   UPGRADE=1 bash scripts/lock.sh   take the newest versions allowed
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "uv not found: run make test once (it installs uv into .venv)"; exit 1; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

# lock NAME: requirements/NAME.in -> requirements/NAME.txt, first-party packages not pinned, digest in the header
lock() {
  local name=$1
  local args=("requirements/$name.in" -o "requirements/$name.txt" --python-version 3.11 --quiet
              --custom-compile-command "make lock")
  [ -n "${UPGRADE:-}" ] && args+=(--upgrade)
  local pkg
  for pkg in inferflow-core inferflow-feast inferflow-logging inferflow-numerix inferflow-onfs inferflow-predator \
             inferflow-rule-filter inferflow-jsonl-log; do
    args+=(--no-emit-package "$pkg")
  done
  "$UV" pip compile "${args[@]}"
  {
    echo "# inputs-sha256: $("$PY" scripts/lock_inputs.py "$name")"
    cat "requirements/$name.txt"
  } > "requirements/$name.txt.new"
  mv "requirements/$name.txt.new" "requirements/$name.txt"
  echo "wrote requirements/$name.txt ($(grep -c '^[a-z]' "requirements/$name.txt") pinned packages)"
}

lock lock
lock feast-lock
lock triton-lock
