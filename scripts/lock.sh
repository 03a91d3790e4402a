#!/usr/bin/env bash
# `make lock`: resolve every third-party package the repository installs (core, plugins, test tools, the
# MLServer test venv, the build backend) once, into requirements/lock.txt. Every install uses it as a
# constraints file: scripts/test.sh, scripts/demo.sh, the Dockerfile and therefore .ci/run.
#
#   bash scripts/lock.sh             re-resolve, keeping the pins that still satisfy the inputs
#   UPGRADE=1 bash scripts/lock.sh   take the newest versions allowed
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "uv not found: run make test once (it installs uv into .venv)"; exit 1; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

args=(requirements/lock.in -o requirements/lock.txt --python-version 3.11 --quiet
      --custom-compile-command "make lock")
[ -n "${UPGRADE:-}" ] && args+=(--upgrade)
for name in inferflow-core inferflow-logging inferflow-numerix inferflow-onfs inferflow-predator \
            inferflow-rule-filter; do
  args+=(--no-emit-package "$name")
done
"$UV" pip compile "${args[@]}"
{
  echo "# inputs-sha256: $("$PY" scripts/lock_inputs.py)"
  cat requirements/lock.txt
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -c '^[a-z]' requirements/lock.txt) pinned packages)"
