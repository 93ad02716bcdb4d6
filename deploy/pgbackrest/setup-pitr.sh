#!/usr/bin/env bash
# Point-in-time recovery for alertd's PostgreSQL with pgBackRest: archive every WAL segment to the repository,
# create the stanza, check that archiving works, take the first full backup. Run as the postgres user on the
# database host, after installing deploy/pgbackrest/pgbackrest.conf as /etc/pgbackrest.conf:
#
#     sudo -u postgres deploy/pgbackrest/setup-pitr.sh
#
# Then schedule backups (docs/operations.md#backups): a full one weekly, a differential one daily.
# Settings (environment): PGBACKREST_CONFIG (/etc/pgbackrest.conf), STANZA (alertd), PGPORT and PGHOST (the
# socket folder) for psql, and PG_RESTART, the command that restarts PostgreSQL when archive_mode had to change
# (default: Debian's `pg_ctlcluster 15 main restart`). Safe to run again.
set -euo pipefail

config=${PGBACKREST_CONFIG:-/etc/pgbackrest.conf}
stanza=${STANZA:-alertd}
restart=${PG_RESTART:-pg_ctlcluster 15 main restart}
backrest=(pgbackrest --config="$config" --stanza="$stanza")
sql() { psql -X -q -v ON_ERROR_STOP=1 -At -d postgres -c "$1"; }

echo "setup-pitr: archiving WAL to pgBackRest stanza '$stanza'"
sql "ALTER SYSTEM SET wal_level = 'replica'"
sql "ALTER SYSTEM SET archive_mode = 'on'"
sql "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$config --stanza=$stanza archive-push %p'"
sql "ALTER SYSTEM SET archive_timeout = '60s'"  # a quiet database still archives a segment every minute
sql "ALTER SYSTEM SET max_wal_senders = '10'"
sql "SELECT pg_reload_conf()" >/dev/null
if [ "$(sql "SELECT count(*) FROM pg_settings WHERE pending_restart")" != "0" ]; then
  echo "setup-pitr: restarting PostgreSQL ($restart) for archive_mode / wal_level"
  $restart
fi

"${backrest[@]}" stanza-create
"${backrest[@]}" check        # switches WAL and waits until the segment is in the repository
if "${backrest[@]}" info --output=json | grep -q '"label"'; then
  echo "setup-pitr: a backup exists already; taking a differential one"
  "${backrest[@]}" backup --type=diff
else
  "${backrest[@]}" backup --type=full
fi
"${backrest[@]}" info
