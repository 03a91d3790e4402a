#!/usr/bin/env bash
# Install the core and every plugin into .venv, then run `inferflow demo` (embedded backends, no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
echo "installing inferflow-core and the plugins into .venv (pinned by requirements/lock.txt) ..."
venv_main
exec .venv/bin/inferflow demo "$@"
