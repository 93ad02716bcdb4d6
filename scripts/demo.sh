#!/usr/bin/env bash
# Install what is needed, then run `alertd demo` (extra arguments are passed on, e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2  # what setup says goes to stderr: with --json, stdout is the demo's document alone
exec .venv/bin/alertd demo "$@"
