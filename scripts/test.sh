#!/usr/bin/env bash
# The whole test suite, from nothing: venvs, installs, lint, type check, stub check, pytest.
# Used by `make test` (the README's test command) and therefore by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

echo "== venv .venv (core + every plugin, editable, with test extras)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=(-e ".[test]")
for p in plugins/*/ examples/plugin-*/; do
  [ -f "$p/pyproject.toml" ] && extras+=(-e "${p%/}[test]")
done
.venv/bin/python -m pip install -q "${extras[@]}"

echo "== venv .venv-mlserver (MLServer must run as its own process, pinned; see dependencies.md)"
[ -x .venv-mlserver/bin/python ] || "$PY" -m venv .venv-mlserver
.venv-mlserver/bin/python -m pip install -q --upgrade pip
.venv-mlserver/bin/python -m pip install -q "mlserver==1.7.1" "mlserver-sklearn==1.7.1"
export INFERFLOW_MLSERVER_BIN="$PWD/.venv-mlserver/bin/mlserver"
export INFERFLOW_MLSERVER_PYTHON="$PWD/.venv-mlserver/bin/python"

echo "== generated stubs are up to date"
PYTHON=.venv/bin/python bash scripts/gen_protos.sh
if git rev-parse --git-dir >/dev/null 2>&1; then
  git diff --exit-code --stat -- '*_pb2*.py' '*_pb2*.pyi' || { echo "stubs differ from proto/: run scripts/gen_protos.sh and commit"; exit 1; }
fi

echo "== ruff + mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

echo "== pytest"
.venv/bin/pytest -q -rfE "$@"
