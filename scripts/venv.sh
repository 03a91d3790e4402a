#!/usr/bin/env bash
# Create or update the repository's virtual environments from requirements/lock.txt (one resolution for
# every install). Sourced by demo.sh and test.sh; not meant to be run directly.
#
#   venv_main [test]   .venv: the core and every plugin, editable ("test": with their test extras)
#   venv_mlserver      .venv-mlserver: MLServer and its sklearn runtime, run by the tests as a process
#   venv_feast         .venv-feast: the core + inferflow-feast (own lock: requirements/feast-lock.txt)
#   venv_triton        .venv-triton: nvidia-pytriton for the predator tests (own lock: triton-lock.txt)
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
    [ "$p" = plugins/inferflow_feast/ ] && continue  # Feast conflicts with the main lock: .venv-feast only
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

# Install into a separate venv from its own lock: uv when .venv has it (seconds instead of minutes), else pip.
install_locked() {
  local venv=$1 lock="$PWD/requirements/$2"
  shift 2
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install -q --python "$venv/bin/python" -c "$lock" --build-constraint "$lock" "$@"
  else
    PIP_CONSTRAINT="$lock" "$venv/bin/python" -m pip install -q -c "$lock" "$@"
  fi
}

# .venv-feast: the core, inferflow-feast (with its tests) and what `inferflow feast demo` runs, pinned by
# requirements/feast-lock.txt (Feast pins pandas<3 and pulls a web stack: never in .venv or the image).
venv_feast() {
  install_locked .venv-feast feast-lock.txt -e . -e "plugins/inferflow_feast[test]" \
    -e "plugins/inferflow_predator[onnx]" -e plugins/inferflow_numerix
}

# .venv-triton: nvidia-pytriton (tritonserver 2.51, CPU-only, Python backend; its stub needs numpy<2), run by
# the predator tests as its own process, pinned by requirements/triton-lock.txt.
venv_triton() {
  install_locked .venv-triton triton-lock.txt nvidia-pytriton numpy
}
