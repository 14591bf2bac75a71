#!/usr/bin/env bash
# Two `laddkoll serve` instances on one PostgreSQL behind a real HAProxy (README: "Several
# instances"). Runs the OCPP interop suite through the balancer (HAProxy alternates requests
# between the instances, so a charger's WebSocket lands on one and the REST calls that start,
# stop and command it go to both), then SIGKILLs one instance mid-traffic and checks that its
# chargers are shown offline when its lease expires, reconnect through the balancer to the
# survivor, and that every acknowledged session is still there and finished once; then the suite
# runs again on the survivor. Prints `N passed, N failed` last; exits non-zero on any failure.
#
# Needs: PostgreSQL (CLUSTER_DATABASE_URL, a fresh database), haproxy (installed by .ci/run),
# the interop venv (target/interop-venv, made by tests/interop/run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=target/debug/laddkoll
VENV=target/interop-venv
SUITE=tests/interop/test_interop.py
DB_URL=${CLUSTER_DATABASE_URL:?set CLUSTER_DATABASE_URL to a fresh PostgreSQL database}
JWT_SECRET=cluster-jwt-secret-0123456789abcdefghijk
OPERATOR_EMAIL=ops-cluster@example.se
OPERATOR_PASSWORD="cluster operator passphrase 7"
TMP=$(mktemp -d)
PIDS=()
PASSED=0
FAILED=0

say() { printf 'cluster: %s\n' "$*"; }
ok() { PASSED=$((PASSED + 1)); say "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }

finish() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for f in "$TMP"/*.log; do
            [ -f "$f" ] && { say "--- last lines of $(basename "$f")"; tail -n 25 "$f"; }
        done
    fi
    rm -rf "$TMP"
    [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ] && FAILED=1
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
trap finish EXIT

command -v haproxy >/dev/null || { say "haproxy is not installed"; exit 1; }
"$VENV/bin/python" -c 'import ocpp, websockets' || { say "run tests/interop/run.sh first (it makes $VENV)"; exit 1; }
[ -x "$BIN" ] || cargo build --quiet --bin laddkoll

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_up() {
    for _ in $(seq 1 150); do
        curl -fsS --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

export DATABASE_URL="$DB_URL" LADDKOLL_JWT_SECRET="$JWT_SECRET" LADDKOLL_APP_START_TIMEOUT_SECS=5 \
    LADDKOLL_OCPP_CALL_TIMEOUT_SECS=10 LADDKOLL_STALE_SESSION_AFTER_SECS=1 \
    LADDKOLL_INSTANCE_LEASE_SECS=3 LADDKOLL_LOG="${LADDKOLL_LOG:-warn}"
LADDKOLL_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" "$BIN" create-operator --email "$OPERATOR_EMAIL" >"$TMP/operator.log" 2>&1

PORT_A=$(free_port)
PORT_B=$(free_port)
PORT_LB=$(free_port)
LADDKOLL_INSTANCE_ID=a LADDKOLL_BIND="127.0.0.1:$PORT_A" "$BIN" serve >"$TMP/instance-a.log" 2>&1 &
PID_A=$!
PIDS+=("$PID_A")
LADDKOLL_INSTANCE_ID=b LADDKOLL_BIND="127.0.0.1:$PORT_B" "$BIN" serve >"$TMP/instance-b.log" 2>&1 &
PIDS+=($!)
wait_up "$PORT_A" && wait_up "$PORT_B" || { say "the instances did not come up"; exit 1; }

# The balancer configuration the README documents: round robin per request, health checks
# on /healthz (a dead instance leaves the pool within a second), WebSockets tunnelled.
cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option http-server-close
frontend laddkoll
    bind 127.0.0.1:$PORT_LB
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 300ms fall 2 rise 2
    server a 127.0.0.1:$PORT_A check
    server b 127.0.0.1:$PORT_B check
EOF
haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)
wait_up "$PORT_LB" || { say "haproxy did not come up"; exit 1; }

suite() { # LABEL
    INTEROP_BASE_URL="http://127.0.0.1:$PORT_LB" INTEROP_OPERATOR_EMAIL="$OPERATOR_EMAIL" \
        INTEROP_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" INTEROP_HEARTBEAT_SECS=300 \
        INTEROP_LABEL="$1" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
        timeout -k 5 180 "$VENV/bin/python" "$SUITE" >"$TMP/$1.out" 2>&1
}

say "interop suite through HAProxy, two instances"
if suite two-instances; then ok "interop through the balancer ($(tail -n 1 "$TMP/two-instances.out"))"; else
    fail "interop through the balancer"; cat "$TMP/two-instances.out"; fi

say "SIGKILL instance a mid-traffic"
"$VENV/bin/python" tests/cluster/kill_check.py --base "http://127.0.0.1:$PORT_LB" \
    --email "$OPERATOR_EMAIL" --password "$OPERATOR_PASSWORD" --kill-pid "$PID_A" \
    >"$TMP/kill.out" 2>&1 && ok "failover: $(tail -n 1 "$TMP/kill.out")" || {
    fail "failover"
    cat "$TMP/kill.out"
}

say "interop suite through HAProxy on the survivor"
if suite survivor; then ok "interop on the survivor ($(tail -n 1 "$TMP/survivor.out"))"; else
    fail "interop on the survivor"; cat "$TMP/survivor.out"; fi
