#!/usr/bin/env bash
# Restore alertd's database as it was at a moment, into a new data folder, with pgBackRest. Run as the postgres
# user:
#
#     sudo -u postgres deploy/pgbackrest/restore-pitr.sh '2026-11-30 21:04:00+00' /var/lib/postgresql/15/restored
#
# Then start PostgreSQL on that folder (it replays the archived WAL up to the moment, then opens for writes),
# run `alertd migrate`, and start `alertd serve`: deadlines that passed while the database was lost fire once.
# With DRILL=1 the restored cluster does not archive (a drill must not write into the repository that the live
# database archives to). PGBACKREST_CONFIG and STANZA as in setup-pitr.sh. The folder must be empty or absent.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 'YYYY-MM-DD HH:MM:SS+TZ' NEW_DATA_FOLDER" >&2
  exit 2
fi
target=$1
pgdata=$2
config=${PGBACKREST_CONFIG:-/etc/pgbackrest.conf}
stanza=${STANZA:-alertd}
extra=()
if [ "${DRILL:-0}" = "1" ]; then extra+=(--archive-mode=off); fi

mkdir -p "$pgdata"
chmod 0700 "$pgdata"
pgbackrest --config="$config" --stanza="$stanza" --pg1-path="$pgdata" --type=time --target="$target" \
  --target-action=promote "${extra[@]}" restore
echo "restore-pitr: restored to $target in $pgdata; start PostgreSQL on it, then alertd migrate and alertd serve"
