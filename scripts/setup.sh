#!/usr/bin/env bash
# Install what alertd needs on Debian/Ubuntu: PostgreSQL with PostGIS, Mosquitto, Chromium (browser tests), nginx,
# pgBackRest and promtool (the tests of deploy/ run them), and the Python package with its test extras in ./.venv.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The PostGIS package matching the installed PostgreSQL (15 on Debian 12), or 15 when none is installed yet.
pg_major=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pg_major=$(basename "$(dirname "$d")"); done
pg_major=${pg_major:-15}

# patroni and etcd-server: the high-availability cluster of the fault tests, bench/failover.py and scripts/ha-demo.sh
# (seconds to install; the harness starts its own members on free ports and never uses a packaged service).
want=("postgresql-${pg_major}-postgis-3" mosquitto mosquitto-clients chromium python3-venv nginx pgbackrest prometheus
      patroni etcd-server)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt=(apt-get -o DPkg::Lock::Timeout=300)  # another install may be running: wait for it
  $SUDO env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null; then
    # Ubuntu names PostGIS after its PostgreSQL too; try the distribution's default PostgreSQL instead.
    $SUDO env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq postgresql postgis mosquitto \
      mosquitto-clients chromium python3-venv nginx pgbackrest prometheus patroni etcd-server >/dev/null
  fi
fi
# The packaged services are not needed: alertd and its tests start their own servers on free ports in temporary
# folders (nginx, Prometheus and pgBackRest included: the tests use only their binaries and their own configs).

# The Python package: installed (editable, with its test extras) only when .venv is new, pyproject.toml changed
# since the last install (its hash is kept in .venv), or an import fails; otherwise nothing runs, in a second.
PY=${PYTHON:-python3}
stamp=.venv/.alertd-pyproject.sha256
want_hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
imports_ok() {
  .venv/bin/python -c "import alertd, asyncpg, aiohttp, paho.mqtt, twilio, jwt, argon2, brotli" 2>/dev/null
}
if [ ! -x .venv/bin/python ]; then
  reason="no .venv yet"
  "$PY" -m venv .venv
elif [ "$(cat "$stamp" 2>/dev/null)" != "$want_hash" ]; then
  reason="pyproject.toml changed"
elif ! imports_ok; then
  reason="a dependency is missing"
else
  reason=""
fi
if [ -n "$reason" ]; then
  echo "setup: installing the alertd package and its dependencies into .venv ($reason)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # pip's and setuptools' chatter goes to a log, shown only when the install fails
  if ! .venv/bin/python -m pip install -q -e '.[test]' > .venv/setup-pip.log 2>&1 || ! imports_ok; then
    cat .venv/setup-pip.log >&2
    echo "setup: Python dependencies did not install (the log above is .venv/setup-pip.log)" >&2
    exit 1
  fi
  echo "$want_hash" > "$stamp"
fi
