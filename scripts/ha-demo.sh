#!/usr/bin/env bash
# Install what is needed, then start a local Patroni cluster (three etcd members, two PostgreSQL+PostGIS nodes in
# synchronous mode, alertd's database migrated) and print its multi-host ALERTD_DATABASE_URL and how to kill its
# primary: run `alertd serve` on that URL, keep the console open, kill the primary and watch alertd carry on.
# Ctrl-C stops the cluster. An optional argument names the folder (emptied first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m alertd.local.cluster "$@"
