#!/usr/bin/env bash
# Routed-command latency: two instances on a fresh PostgreSQL database, one charger on instance A,
# commands through A (local) and B (routed). Usage: bench/routed_commands.sh [N] (default 200).
# PROFILE=release (default) or debug picks the binary. Writes bench/results/routed-<time>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
PROFILE=${PROFILE:-release}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
VENV=target/interop-venv
[ -x "$VENV/bin/python" ] || { echo "run tests/interop/run.sh once first (it makes $VENV)"; exit 1; }
if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin laddkoll; else cargo build --quiet --bin laddkoll; fi
BIN=target/$PROFILE/laddkoll
DB=laddkoll_bench_routed
psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" LADDKOLL_JWT_SECRET=bench-routed-secret-0123456789abcdefghij \
    LADDKOLL_LOG=warn
LADDKOLL_OPERATOR_PASSWORD="bench operator passphrase 7" "$BIN" create-operator --email ops-bench@example.se >/dev/null
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PA=$(port)
PB=$(port)
LADDKOLL_INSTANCE_ID=a LADDKOLL_BIND=127.0.0.1:$PA "$BIN" serve &
A=$!
LADDKOLL_INSTANCE_ID=b LADDKOLL_BIND=127.0.0.1:$PB "$BIN" serve &
B=$!
trap 'kill $A $B 2>/dev/null || true' EXIT
for p in $PA $PB; do
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
mkdir -p bench/results
out=bench/results/routed-$PROFILE-$(date -u +%Y%m%dT%H%M%SZ).json
"$VENV/bin/python" bench/routed_commands.py --a "http://127.0.0.1:$PA" --b "http://127.0.0.1:$PB" \
    --email ops-bench@example.se --password "bench operator passphrase 7" -n "$N" | tee "$out"
