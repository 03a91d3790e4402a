#!/usr/bin/env bash
# Install the core and every plugin into .venv, then run `inferflow demo` (embedded backends, no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
pkgs=(-e .)
for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && pkgs+=(-e "${p%/}"); done
echo "installing inferflow-core and ${#pkgs[@]} packages into .venv ..."
.venv/bin/python -m pip install -q "${pkgs[@]}"
exec .venv/bin/inferflow demo "$@"
