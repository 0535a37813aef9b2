#!/usr/bin/env bash
# A production-like stack on one host, for a team's first server or for tests:
#
#   PostgreSQL (the Debian package's cluster) with databases for Prefect, MLflow and MLflow's users
#   a Prefect server on PostgreSQL                     http://$STACK_HOST:$STACK_PREFECT_PORT/api
#   an MLflow tracking server on PostgreSQL, serving artifacts, with MLflow's basic-auth app
#                                                      http://$STACK_HOST:$STACK_MLFLOW_PORT
#   work pools cpu-pool and gpu-pool (type process), one `prefect worker start` for each
#
# Usage: ops/stack.sh start|stop|status|env|purge
#   start   start what is not running yet, then print the environment a team sets
#   stop    stop the workers and servers it started, and PostgreSQL if this script started it
#   status  what runs, and whether the servers answer
#   env     the environment to point a shell at the stack: eval "$(ops/stack.sh env)"
#   purge   stop, drop the stack's databases and role, delete the state dir (tests use this)
#
# Settings (environment variables, defaults in brackets):
#   STACK_DIR                  state: pids, logs, secrets, Prefect home, artifacts [<repo>/.stack]
#   STACK_HOST                 address the servers bind to and are reached at [127.0.0.1]; to
#                              serve other hosts, this host's address on their network
#   STACK_MLFLOW_ALLOWED_HOSTS MLflow's --allowed-hosts (Host headers it accepts; its default is
#                              localhost and private IPs: add the DNS name clients use)
#   STACK_PREFECT_PORT         [4200]
#   STACK_MLFLOW_PORT          [5000]
#   STACK_MLFLOW_WORKERS       MLflow server worker processes [4]
#   STACK_MLFLOW_AUTH_CACHE_SECONDS  how long a verified login is cached per worker [60]; 0: off
#   STACK_ARTIFACTS_DESTINATION  where MLflow stores artifacts [$STACK_DIR/mlartifacts]; an
#                              s3://bucket/path needs MLFLOW_S3_ENDPOINT_URL / AWS_* set here
#   STACK_PG_VERSION, STACK_PG_CLUSTER  the Debian cluster [newest installed, main]
#   STACK_PG_USER              the role that owns the databases [estimator]
#   STACK_PG_PASSWORD          its password [generated once, kept in $STACK_DIR/secrets]
#   STACK_PG_DB_PREFIX         prefix of the database names prefect, mlflow, mlflow_auth []
#   MLFLOW_AUTH_ADMIN_USERNAME MLflow's admin user, created on the first start [admin]
#   MLFLOW_AUTH_ADMIN_PASSWORD its password [generated once, kept in $STACK_DIR/secrets]; only
#                              read when the admin is created (change it with MLflow's API later)
#   STACK_CPU_POOL, STACK_GPU_POOL  work pool names [cpu-pool, gpu-pool] (prefect.yaml's)
#   STACK_PYTHON_BIN           folder with prefect and mlflow [<repo>/.venv/bin]
# Other PREFECT_* / MLFLOW_* / AWS_* variables in the environment reach the servers and workers
# (e.g. PREFECT_WORKER_QUERY_SECONDS, PREFECT_SERVER_UI_ENABLED=false, CUDA_VISIBLE_DEVICES).
#
# Secrets are never put on a command line or in a log: PostgreSQL's password is in a pgpass file
# (PGPASSFILE) under $STACK_DIR/secrets (mode 700), MLflow's admin password in a file beside it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
mkdir -p "$STACK_DIR"
STACK_DIR="$(cd "$STACK_DIR" && pwd)"
HOST="${STACK_HOST:-127.0.0.1}"
PREFECT_PORT="${STACK_PREFECT_PORT:-4200}"
MLFLOW_PORT="${STACK_MLFLOW_PORT:-5000}"
MLFLOW_WORKERS="${STACK_MLFLOW_WORKERS:-4}"
ARTIFACTS="${STACK_ARTIFACTS_DESTINATION:-$STACK_DIR/mlartifacts}"
PG_USER="${STACK_PG_USER:-estimator}"
PG_PREFIX="${STACK_PG_DB_PREFIX:-}"
PG_DATABASES=("${PG_PREFIX}prefect" "${PG_PREFIX}mlflow" "${PG_PREFIX}mlflow_auth")
ADMIN_USER="${MLFLOW_AUTH_ADMIN_USERNAME:-admin}"
CPU_POOL="${STACK_CPU_POOL:-cpu-pool}"
GPU_POOL="${STACK_GPU_POOL:-gpu-pool}"
BIN="${STACK_PYTHON_BIN:-$ROOT/.venv/bin}"

PREFECT_API="http://$HOST:$PREFECT_PORT/api"
MLFLOW_URL="http://$HOST:$MLFLOW_PORT"
SECRETS="$STACK_DIR/secrets"
PIDS="$STACK_DIR/pids"
LOGS="$STACK_DIR/logs"
PG_STARTED_MARK="$STACK_DIR/postgresql-started-by-stack"
SERVICES=(worker-"$GPU_POOL" worker-"$CPU_POOL" mlflow prefect-server)

say() { printf '[stack] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
die_pg() { say "error: $*"; exit 3; }  # PostgreSQL unavailable: tests skip on this status

for name in "$PG_USER" "${PG_DATABASES[@]}"; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "'$name' is not a plain PostgreSQL name ([a-z_][a-z0-9_]*)"
done

# Not root: sudo (without a terminal, sudo -n: fail instead of waiting for a password).
SUDO=(sudo)
[ -t 0 ] || SUDO=(sudo -n)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else "${SUDO[@]}" "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "${SUDO[@]}" -u postgres "$@"; fi; }

# ---------------------------------------------------------------- secrets
secret() {  # secret NAME [VALUE]: the stored secret NAME, stored first from VALUE or generated
    local file="$SECRETS/$1"
    mkdir -p "$SECRETS" && chmod 700 "$SECRETS"
    if [ -n "${2:-}" ]; then
        (umask 077 && printf '%s' "$2" >"$file")
    elif [ ! -s "$file" ]; then
        (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_hex(16), end="")' >"$file")
    fi
    cat "$file"
}

# ---------------------------------------------------------------- PostgreSQL
PG_VERSION="" PG_CLUSTER="" PG_PORT="" PG_STATUS=""

pg_find() {  # the Debian cluster: PG_VERSION PG_CLUSTER PG_PORT PG_STATUS
    command -v pg_lsclusters >/dev/null || return 1
    local line
    line="$(pg_lsclusters -h | awk -v v="${STACK_PG_VERSION:-}" -v c="${STACK_PG_CLUSTER:-main}" \
        '(v == "" || $1 == v) && $2 == c' | sort -k1,1n | tail -n 1)"
    [ -n "$line" ] || return 1
    read -r PG_VERSION PG_CLUSTER PG_PORT PG_STATUS _ <<<"$line"
}

pg_ensure() {
    if ! command -v pg_lsclusters >/dev/null; then
        say "PostgreSQL is not installed: apt-get install -y postgresql"
        as_root apt-get install -y postgresql >"$LOGS/apt-postgresql.log" 2>&1 ||
            { as_root apt-get update >>"$LOGS/apt-postgresql.log" 2>&1 &&
                as_root apt-get install -y postgresql >>"$LOGS/apt-postgresql.log" 2>&1; } ||
            die_pg "could not install PostgreSQL (see $LOGS/apt-postgresql.log)"
    fi
    if ! pg_find; then
        local version
        version="${STACK_PG_VERSION:-$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -n | tail -n 1)}"
        say "creating PostgreSQL cluster $version/${STACK_PG_CLUSTER:-main}"
        as_root pg_createcluster "$version" "${STACK_PG_CLUSTER:-main}" >/dev/null ||
            die_pg "pg_createcluster $version ${STACK_PG_CLUSTER:-main} failed"
        pg_find || die_pg "no PostgreSQL cluster after pg_createcluster"
    fi
    pg_start
}

pg_start() {  # start the cluster when it is down (and remember that this script started it)
    if [ "$PG_STATUS" != online ]; then
        say "starting PostgreSQL $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
        as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start ||
            die_pg "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed"
        touch "$PG_STARTED_MARK"
        pg_find
    fi
    local _
    for _ in $(seq 1 30); do
        as_postgres psql -X -q -p "$PG_PORT" -c 'select 1' >/dev/null 2>&1 && return 0
        sleep 1
    done
    die_pg "PostgreSQL $PG_VERSION/$PG_CLUSTER does not answer on port $PG_PORT"
}

pg_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"; }

pg_provision() {  # the role (its password set to ours every start) and the databases it owns
    local password quoted db
    password="$(secret pg_password "${STACK_PG_PASSWORD:-}")"
    quoted="${password//\'/\'\'}"
    # SQL on standard input: the password never appears in a process list.
    {
        echo "SELECT 'CREATE ROLE $PG_USER LOGIN' WHERE NOT EXISTS"
        echo "  (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \\gexec"
        echo "ALTER ROLE $PG_USER WITH LOGIN PASSWORD '$quoted';"
        for db in "${PG_DATABASES[@]}"; do
            echo "SELECT 'CREATE DATABASE $db OWNER $PG_USER' WHERE NOT EXISTS"
            echo "  (SELECT FROM pg_database WHERE datname = '$db') \\gexec"
        done
    } | pg_admin -f - >/dev/null
    local escaped="${password//\\/\\\\}"
    escaped="${escaped//:/\\:}"
    (umask 077 && printf '%s:%s:*:%s:%s\n' 127.0.0.1 "$PG_PORT" "$PG_USER" "$escaped" \
        >"$SECRETS/pgpass" && printf '%s:%s:*:%s:%s\n' localhost "$PG_PORT" "$PG_USER" \
        "$escaped" >>"$SECRETS/pgpass")
}

# ---------------------------------------------------------------- processes
running() { local pid; pid="$(cat "$PIDS/$1.pid" 2>/dev/null)" && kill -0 "$pid" 2>/dev/null; }

launch() {  # launch NAME SETUP CMD...: in a subshell, run the shell function SETUP (exports),
    # then CMD in its own session (its pid is its process group), output appended to a log.
    # Secrets travel in the environment, never on a command line.
    local name="$1" setup="$2"
    shift 2
    mkdir -p "$PIDS" "$LOGS" "$STACK_DIR/work"
    echo "=== $(date -u +%FT%TZ) ops/stack.sh starts: $*" >>"$LOGS/$name.log"
    (cd "$STACK_DIR/work" && "$setup" && exec setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null) &
    echo $! >"$PIDS/$name.pid"
}

halt() {  # halt NAME: SIGTERM its process group, SIGKILL after 20 s
    local name="$1" pid
    pid="$(cat "$PIDS/$name.pid" 2>/dev/null)" || return 0
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
}

wait_http() {  # wait_http NAME URL SECONDS: until URL answers (any HTTP status) or NAME dies
    local name="$1" url="$2" deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        running "$name" || { tail -n 40 "$LOGS/$name.log" >&2; die "$name exited (log: $LOGS/$name.log)"; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" != 000 ] && return 0
        sleep 0.5
    done
    tail -n 40 "$LOGS/$name.log" >&2
    die "$name did not answer at $url in $3 s (log: $LOGS/$name.log)"
}

# Environment of every process the stack starts: the caller's, less anything that would point
# it at another Prefect or MLflow; each process's own settings are added by its setup function.
base_env() {
    unset PREFECT_API_URL PREFECT_API_KEY PREFECT_PROFILE PREFECT_API_DATABASE_CONNECTION_URL \
        PREFECT_SERVER_DATABASE_CONNECTION_URL MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME \
        MLFLOW_TRACKING_PASSWORD MLFLOW_TRACKING_TOKEN MLFLOW_AUTH_ADMIN_PASSWORD
    export PREFECT_HOME="$STACK_DIR/prefect-home"
    export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
    export PGPASSFILE="$SECRETS/pgpass"
}

prefect_server_env() {
    base_env
    export PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$PG_USER@127.0.0.1:$PG_PORT/${PG_DATABASES[0]}"
}

mlflow_env() {
    base_env
    export MLFLOW_AUTH_CONFIG_PATH="$STACK_DIR/mlflow/basic_auth.ini"
    export MLFLOW_AUTH_ADMIN_USERNAME="$ADMIN_USER"
    MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$SECRETS/mlflow_admin_password")"
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$SECRETS/flask_secret_key")"
    export MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
}

worker_env() {  # the workers (and so the flow runs) record to the stack's MLflow, as the admin
    base_env
    export PREFECT_API_URL="$PREFECT_API" MLFLOW_TRACKING_URI="$MLFLOW_URL"
    export MLFLOW_TRACKING_USERNAME="$ADMIN_USER"
    MLFLOW_TRACKING_PASSWORD="$(cat "$SECRETS/mlflow_admin_password")"
    export MLFLOW_TRACKING_PASSWORD
}

start_prefect_server() {
    running prefect-server && return 0
    say "starting the Prefect server on $PREFECT_API (database ${PG_DATABASES[0]})"
    launch prefect-server prefect_server_env "$BIN/prefect" server start --host "$HOST" --port "$PREFECT_PORT"
}

start_mlflow() {
    running mlflow && return 0
    secret mlflow_admin_password "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" >/dev/null
    secret flask_secret_key >/dev/null
    mkdir -p "$STACK_DIR/mlflow"
    [[ "$ARTIFACTS" == *://* ]] || mkdir -p "$ARTIFACTS"
    # MLflow's basic-auth settings; its user store is a PostgreSQL database too.
    cat >"$STACK_DIR/mlflow/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = postgresql://$PG_USER@127.0.0.1:$PG_PORT/${PG_DATABASES[2]}
admin_username = $ADMIN_USER
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# Verified credentials are cached per server worker for this many seconds: without it every
# request pays a PBKDF2 hash (metric logging ran ~4 requests/s on 2 busy cores). A password
# change takes up to this long to reach the other workers.
auth_cache_ttl_seconds = ${STACK_MLFLOW_AUTH_CACHE_SECONDS:-60}
EOF
    say "starting the MLflow server on $MLFLOW_URL (database ${PG_DATABASES[1]}, artifacts $ARTIFACTS)"
    launch mlflow mlflow_env "$BIN/mlflow" server --app-name basic-auth \
        --backend-store-uri "postgresql://$PG_USER@127.0.0.1:$PG_PORT/${PG_DATABASES[1]}" \
        --serve-artifacts --artifacts-destination "$ARTIFACTS" \
        --host "$HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS" \
        ${STACK_MLFLOW_ALLOWED_HOSTS:+--allowed-hosts "$STACK_MLFLOW_ALLOWED_HOSTS"}
}

check_mlflow_login() {  # the admin's stored password works (it is only read on the first start)
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' -K - \
        "$MLFLOW_URL/api/2.0/mlflow/experiments/search?max_results=1" \
        <<<"user = \"$ADMIN_USER:$(cat "$SECRETS/mlflow_admin_password")\"")"
    [ "$code" = 200 ] || die "MLflow refuses $ADMIN_USER's password (HTTP $code): its user store" \
        "(database ${PG_DATABASES[2]}) holds another one; set MLFLOW_AUTH_ADMIN_PASSWORD to it" \
        "and start again, or purge"
}

start_workers() {
    local pool
    for pool in "$CPU_POOL" "$GPU_POOL"; do
        if ! (worker_env && "$BIN/prefect" work-pool inspect "$pool" >/dev/null 2>&1); then
            (worker_env && "$BIN/prefect" work-pool create "$pool" --type process >/dev/null)
        fi
        running "worker-$pool" && continue
        say "starting a worker for $pool"
        launch "worker-$pool" worker_env "$BIN/prefect" worker start --pool "$pool" \
            --name "stack-$pool-$(hostname)"
    done
    # A pool is READY once one of its workers has sent a heartbeat.
    local deadline=$((SECONDS + 60)) ready
    for pool in "$CPU_POOL" "$GPU_POOL"; do
        while :; do
            running "worker-$pool" || { tail -n 40 "$LOGS/worker-$pool.log" >&2; die "the $pool worker exited"; }
            ready="$(curl -s "$PREFECT_API/work_pools/$pool" | grep -c '"status":"READY"' || true)"
            [ "$ready" = 1 ] && break
            [ "$SECONDS" -lt "$deadline" ] || die "$pool is not READY after 60 s (log: $LOGS/worker-$pool.log)"
            sleep 0.5
        done
    done
}

print_env() {
    cat <<EOF
export PREFECT_API_URL=$PREFECT_API
export MLFLOW_TRACKING_URI=$MLFLOW_URL
export MLFLOW_TRACKING_USERNAME=$ADMIN_USER
export MLFLOW_TRACKING_PASSWORD="\$(cat $SECRETS/mlflow_admin_password)"
EOF
}

cmd_start() {
    mkdir -p "$PIDS" "$LOGS"
    [ -x "$BIN/prefect" ] && [ -x "$BIN/mlflow" ] || die "no prefect/mlflow in $BIN (make the venv first)"
    # Prefect reaches PostgreSQL with asyncpg, MLflow (SQLAlchemy 2.1's postgresql://) with
    # psycopg 3; MLflow's basic-auth app needs Flask-WTF (the mlflow[auth] extra).
    "$BIN/python" -c 'import asyncpg, psycopg, flask_wtf' 2>/dev/null ||
        die "$BIN/python lacks asyncpg, psycopg or flask_wtf: pip install 'psycopg[binary]' 'mlflow[auth]'"
    pg_ensure
    pg_provision
    start_prefect_server
    start_mlflow
    wait_http prefect-server "$PREFECT_API/health" 120
    wait_http mlflow "$MLFLOW_URL/health" 120
    check_mlflow_login
    start_workers
    say "up: Prefect $PREFECT_API, MLflow $MLFLOW_URL, pools $CPU_POOL and $GPU_POOL (logs in $LOGS)"
    say "the environment a team sets (or: eval \"\$(ops/stack.sh env)\"):"
    print_env
}

cmd_stop() {
    local name
    for name in "${SERVICES[@]}"; do halt "$name"; done
    if [ -e "$PG_STARTED_MARK" ] && pg_find && [ "$PG_STATUS" = online ]; then
        say "stopping PostgreSQL $PG_VERSION/$PG_CLUSTER (this script started it)"
        as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop
    fi
    rm -f "$PG_STARTED_MARK"
}

cmd_status() {
    local name state=0
    for name in prefect-server mlflow worker-"$CPU_POOL" worker-"$GPU_POOL"; do
        if running "$name"; then
            echo "$name: running (pid $(cat "$PIDS/$name.pid"))"
        else
            echo "$name: stopped"
            state=3
        fi
    done
    if pg_find; then echo "postgresql $PG_VERSION/$PG_CLUSTER: $PG_STATUS (port $PG_PORT)"; else echo "postgresql: not installed"; fi
    echo "prefect api $PREFECT_API/health: HTTP $(curl -s -o /dev/null -w '%{http_code}' "$PREFECT_API/health")"
    echo "mlflow $MLFLOW_URL/health: HTTP $(curl -s -o /dev/null -w '%{http_code}' "$MLFLOW_URL/health")"
    return "$state"
}

cmd_purge() {
    local name db
    for name in "${SERVICES[@]}"; do halt "$name"; done
    if pg_find; then
        pg_start
        for db in "${PG_DATABASES[@]}"; do
            pg_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
        done
        pg_admin -c "DROP ROLE IF EXISTS $PG_USER" >/dev/null 2>&1 ||
            say "role $PG_USER kept: it still owns other databases"
    fi
    cmd_stop
    rm -rf "$STACK_DIR"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) print_env ;;
    purge) cmd_purge ;;
    *) echo "usage: $0 start|stop|status|env|purge" >&2; exit 2 ;;
esac
