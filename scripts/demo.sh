#!/usr/bin/env bash
# Install what is needed, then run `alertd demo` (extra arguments are passed on, e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/alertd demo "$@"
