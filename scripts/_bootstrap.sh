# Shared set-up for scripts/demo and scripts/test: sourced, not run.
# Creates .venv (once), installs the project with its dev and demo extras, and — when
# the caller asks for it — the system packages and services the tests need.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOCKER_VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '==> %s\n' "$*" >&2; }

quietly() {
    # Runs a set-up step with one progress line; its full output is shown only if it fails.
    local what="$1"; shift
    local output; output="$(mktemp)"
    log "$what"
    if ! "$@" >"$output" 2>&1; then
        cat "$output" >&2; rm -f "$output"
        log "failed: $what"; return 1
    fi
    rm -f "$output"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; return 1; fi
}

apt_updated=0
apt_install() {
    # Install the Debian packages that are not installed yet.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        log "apt-get not found; please install: ${missing[*]}"; return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        quietly "apt-get update" as_root apt-get update; apt_updated=1
    fi
    quietly "installing system packages: ${missing[*]}" \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

ensure_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        log "Python >= 3.11 is required (found: $("$PYTHON" --version 2>&1 || echo none))"; exit 1
    fi
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
}

ensure_venv() {
    ensure_python
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment in $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$(sha256sum < "$REPO_ROOT/pyproject.toml" | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        log "installing the project and its dependencies (first run takes a minute or two)"
        quietly "upgrading pip" "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip
        quietly "installing parcel-locker[dev,demo]" \
            "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$REPO_ROOT[dev,demo]"
        rm -f "$VENV"/.installed-*; touch "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}

pg_ready() { "$VENV/bin/python" - <<'PY' 2>/dev/null
import psycopg, sys
try:
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
}

ensure_postgres() {
    # The suite runs every database test on SQLite and on PostgreSQL.
    pg_ready && return 0
    apt_install postgresql
    log "starting PostgreSQL"
    local ver; ver="$(ls /etc/postgresql | sort -V | tail -1)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    if ! pg_ready; then
        # A fresh install uses peer auth: allow trust on loopback for the test suite.
        local hba="/etc/postgresql/$ver/main/pg_hba.conf"
        as_root sed -i 's/^\(host.*127.0.0.1\/32\s*\)\S*$/\1trust/; s/^\(host.*::1\/128\s*\)\S*$/\1trust/' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
        sleep 2
    fi
    pg_ready || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
}

mosquitto_ready() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }

ensure_mosquitto() {
    # The link tests start private brokers from /usr/sbin/mosquitto and use the shared
    # test broker on 127.0.0.1:1883.
    apt_install mosquitto mosquitto-clients
    mosquitto_ready && return 0
    log "starting Mosquitto on 127.0.0.1:1883"
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
    for _ in $(seq 1 20); do mosquitto_ready && return 0; sleep 0.5; done
    log "Mosquitto is not reachable on 127.0.0.1:1883"; exit 1
}
