#!/usr/bin/env bash
# Create or update the repository's virtual environments from requirements/lock.txt (one resolution for
# every install). Sourced by demo.sh and test.sh; not meant to be run directly.
#
#   venv_main [test]   .venv: the core and every plugin, editable ("test": with their test extras)
#   venv_mlserver      .venv-mlserver: MLServer and its sklearn runtime, run by the tests as a process
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
LOCK="$PWD/requirements/lock.txt"
# Constraints apply to the isolated build environments of the editable installs as well.
export PIP_CONSTRAINT="$LOCK" PIP_DISABLE_PIP_VERSION_CHECK=1

venv_main() {
  local extra=""
  [ "${1:-}" = test ] && extra="[test]"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  local pkgs=(-e ".${extra:-[pandas]}")  # pandas: the client's to_pandas(), used in the README
  [ -n "$extra" ] && pkgs=(-e ".[test,otlp]")  # the tests also cover the OTLP trace exporter
  local p
  for p in plugins/*/; do
    [ -f "$p/pyproject.toml" ] || continue
    if [ -n "$extra" ]; then
      pkgs+=(-e "${p%/}${extra}")
    else
      pkgs+=(-e "${p%/}$(plugin_extras "$p")")
    fi
  done
  if [ -n "$extra" ]; then
    for p in examples/plugin-*/; do [ -f "$p/pyproject.toml" ] && pkgs+=(-e "${p%/}${extra}"); done
  fi
  .venv/bin/python -m pip install -q -c "$LOCK" "${pkgs[@]}"
}

# The extras a plain install of a plugin gets (what the image and the demo need).
plugin_extras() {
  case "$1" in
    plugins/inferflow_predator/) echo "[onnx]" ;;
    plugins/inferflow_onfs/) echo "[disk-cache]" ;;
    *) echo "" ;;
  esac
}

venv_mlserver() {
  [ -x .venv-mlserver/bin/python ] || "$PY" -m venv .venv-mlserver
  .venv-mlserver/bin/python -m pip install -q -c "$LOCK" mlserver mlserver-sklearn scikit-learn
}
