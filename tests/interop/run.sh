#!/usr/bin/env bash
# OCPP 1.6J interop suite: the independent Python `ocpp` package (tests/interop/requirements.txt)
# is the charge point against a real `laddkoll serve` on a fresh SQLite database, and also on
# PostgreSQL when INTEROP_DATABASE_URL is set. Prints `N passed, N failed` as its last line and
# exits non-zero when anything failed. See tests/interop/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/interop-venv
REQUIREMENTS=tests/interop/requirements.txt
SUITE=tests/interop/test_interop.py
BIN=target/debug/laddkoll
JWT_SECRET=interop-jwt-secret-0123456789abcdefghijk # 40 characters
OPERATOR_PASSWORD="interop operator passphrase 7"
HEARTBEAT_SECS=120
SUITE_TIMEOUT=${INTEROP_SUITE_TIMEOUT:-120} # seconds per backend; every scenario has its own

PASSED=0
FAILED=0
SERVER_PID=""
TMP=$(mktemp -d)

say() { printf 'interop: %s\n' "$*"; }

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

finish() {
    local rc=$?
    stop_server
    rm -rf "$TMP"
    if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        FAILED=1 # a setup step failed before any scenario could
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] || exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- the Python side: a venv under target/ (git-ignored), reinstalled when requirements change
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    say "the ocpp package 2.1 needs Python >= 3.11; found $(python3 --version 2>&1)"
    exit 1
}
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if ! "$VENV/bin/python" -c 'import ocpp, websockets' 2>/dev/null ||
    [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    say "installing $REQUIREMENTS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$want" >"$VENV/.requirements.sha256"
fi

# --- the server
if [ -n "${INTEROP_SKIP_BUILD:-}" ]; then
    say "INTEROP_SKIP_BUILD is set: using the existing $BIN"
else
    say "cargo build --bin laddkoll"
    cargo build --quiet --bin laddkoll
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_backend LABEL DATABASE_URL OPERATOR_EMAIL
run_backend() {
    local label=$1 db_url=$2 email=$3 port log out rc line p=0 f=0
    port=$(free_port)
    log="$TMP/$label-server.log"
    out="$TMP/$label-suite.out"
    export DATABASE_URL="$db_url" LADDKOLL_BIND="127.0.0.1:$port" LADDKOLL_JWT_SECRET="$JWT_SECRET" \
        LADDKOLL_APP_START_TIMEOUT_SECS=5 LADDKOLL_OCPP_CALL_TIMEOUT_SECS=10 \
        LADDKOLL_STALE_SESSION_AFTER_SECS=1 \
        LADDKOLL_OCPP_HEARTBEAT_SECS=$HEARTBEAT_SECS LADDKOLL_LOG="${LADDKOLL_LOG:-warn}"

    say "[$label] laddkoll create-operator --email $email"
    if ! LADDKOLL_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" "$BIN" create-operator --email "$email" >"$TMP/$label-operator.log" 2>&1; then
        cat "$TMP/$label-operator.log"
        say "[$label] create-operator failed"
        FAILED=$((FAILED + 1))
        return
    fi

    say "[$label] laddkoll serve on 127.0.0.1:$port"
    "$BIN" serve >"$log" 2>&1 &
    SERVER_PID=$!
    local up=""
    for _ in $(seq 1 150); do
        if curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            up=1
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$up" ]; then
        tail -n 40 "$log"
        say "[$label] the server did not come up"
        stop_server
        FAILED=$((FAILED + 1))
        return
    fi

    set +e
    INTEROP_BASE_URL="http://127.0.0.1:$port" INTEROP_OPERATOR_EMAIL="$email" \
        INTEROP_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" INTEROP_HEARTBEAT_SECS=$HEARTBEAT_SECS \
        INTEROP_LABEL="$label" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
        timeout -k 5 "$SUITE_TIMEOUT" "$VENV/bin/python" "$SUITE" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E "^\[$label\] [0-9]+ passed, [0-9]+ failed$" "$out" | tail -n 1 || true)
    if [ -n "$line" ]; then
        read -r p f <<<"$(sed -E 's/^\[[^]]*\] ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line")"
    else # cut short: count the scenarios that finished
        p=$(grep -c '^ok ' "$out" || true)
        f=$(grep -c '^FAIL ' "$out" || true)
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    if [ "$rc" -ne 0 ] && { [ -z "$line" ] || [ "$f" -eq 0 ]; }; then # counts as one more failure
        if [ "$rc" -eq 124 ]; then
            say "[$label] the suite timed out after ${SUITE_TIMEOUT}s"
        else
            say "[$label] the suite ended abnormally (exit $rc)"
        fi
        FAILED=$((FAILED + 1))
    fi
    if [ "$rc" -ne 0 ]; then
        say "[$label] last server log lines:"
        tail -n 40 "$log"
    fi
    stop_server
}

run_backend sqlite "sqlite://$TMP/interop.db" ops@example.se
if [ -n "${INTEROP_DATABASE_URL:-}" ]; then
    # A server database may be reused: names in the suite are unique per run, so is this email.
    run_backend postgres "$INTEROP_DATABASE_URL" "ops-interop-$(date +%s)-$$@example.se"
fi
