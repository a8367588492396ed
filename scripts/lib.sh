# Shared by scripts/*.sh: install what a fresh machine lacks, start local services.

step() { printf '\n==> %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    step "installing $*"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        step "installing cargo-nextest"
        cargo install cargo-nextest --locked
    fi
}

# PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Mosquitto (1883) are
# what the tests use; start whichever is down.
ensure_services() {
    command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null || apt_install mosquitto
    command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt_install postgresql
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        step "starting PostgreSQL"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 \
        || psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null
    if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
        step "starting Mosquitto"
        as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
        for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.2; done
    fi
}
