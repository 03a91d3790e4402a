#!/usr/bin/env bash
# The whole test suite, from nothing: venvs, installs, lint, type check, stub check, pytest.
# Used by `make test` (the README's test command) and therefore by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh

echo "== requirements/lock.txt matches the pyprojects"
"$PY" scripts/lock_inputs.py --check

echo "== venv .venv (core + every plugin, editable, with test extras; pinned by requirements/lock.txt)"
venv_main test

echo "== venv .venv-mlserver (MLServer runs as its own process; pinned by the same lock)"
venv_mlserver
export INFERFLOW_MLSERVER_BIN="$PWD/.venv-mlserver/bin/mlserver"
export INFERFLOW_MLSERVER_PYTHON="$PWD/.venv-mlserver/bin/python"

echo "== venv .venv-triton (nvidia-pytriton: a real Triton for the predator tests; requirements/triton-lock.txt)"
venv_triton
export INFERFLOW_TRITON_PYTHON="$PWD/.venv-triton/bin/python"

echo "== venv .venv-feast (the core + inferflow-feast; requirements/feast-lock.txt)"
venv_feast

echo "== generated stubs are up to date"
PYTHON=.venv/bin/python bash scripts/gen_protos.sh
if git rev-parse --git-dir >/dev/null 2>&1; then
  git diff --exit-code --stat -- '*_pb2*.py' '*_pb2*.pyi' || { echo "stubs differ from proto/: run scripts/gen_protos.sh and commit"; exit 1; }
fi

echo "== ruff + import contracts (pyproject [tool.importlinter]) + mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache --no-logo
.venv/bin/mypy

echo "== pytest plugins/inferflow_feast (in .venv-feast)"
.venv-feast/bin/pytest -q -rfE -o pythonpath=plugins/inferflow_feast/tests plugins/inferflow_feast

echo "== pytest (the main suite; its summary is the last line)"
.venv/bin/pytest -q -rfE "$@"
