#!/usr/bin/env bash
# Fleet benchmarks for BENCHMARKS.md: one laddkoll instance (release build) driven by
# `laddkoll simulate` on the same machine.
#
#   bench/fleet.sh sqlite|postgres [chargers] [drivers]
#
# Runs, on a fresh database of the chosen backend:
#   1. connections: every charger connects and boots; server RSS before/after -> memory per connection
#   2. steady:      sustained MeterValues (sessions everywhere) with answer latency percentiles
#   3. rest:        wrk on GET /sessions/{id} and GET /locations?… while the fleet keeps sending
#                   (the simulator, wrk and the server share the same 2 cores)
#   4. storm:       every charger loses its connection, queues for 5 s, reconnects within 10 s
#                   and replays its queue
#   5. rates:       (only when STEPS names it) steady runs with shorter meter intervals
#                   (RATE_INTERVALS, default "1.5 1 0.75 0.5" s; RATE_SECS each) to find the
#                   highest rate at p99 <= 50 ms
# Results (JSON reports, wrk output, RSS) go to bench/results/<backend>-<date>/.
#
# Needs: PostgreSQL on 127.0.0.1:5432 for `postgres`; wrk (apt-get install wrk) for step 3;
# `ulimit -n` of at least twice the charger count plus some (client and server are separate
# processes, each needs one descriptor per connection).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=${1:-sqlite}
CHARGERS=${2:-10000}
DRIVERS=${3:-3000}
METER_INTERVAL=${METER_INTERVAL:-3}
STEADY_SECS=${STEADY_SECS:-120}
PORT=${PORT:-18480}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release/laddkoll"
OUT="bench/results/$BACKEND-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
WORK=$(mktemp -d)

ulimit -n "$(ulimit -Hn)" || true
echo "open files: $(ulimit -n)"

cargo build --release --quiet --bin laddkoll

case "$BACKEND" in
    sqlite) DB_URL="sqlite://$WORK/bench.db" ;;
    postgres)
        psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS laddkoll_bench WITH (FORCE)" -c "CREATE DATABASE laddkoll_bench"
        DB_URL="${PG_ADMIN_URL%/*}/laddkoll_bench"
        ;;
    *) echo "usage: $0 sqlite|postgres [chargers] [drivers]" >&2; exit 2 ;;
esac

export DATABASE_URL="$DB_URL" LADDKOLL_BIND="127.0.0.1:$PORT" LADDKOLL_JWT_SECRET=$(head -c 48 /dev/urandom | base64)
export LADDKOLL_AUTH_RATE_PER_MINUTE=1000000 LADDKOLL_REGISTER_RATE_PER_HOUR=1000000 LADDKOLL_LOG=${LADDKOLL_LOG:-warn}
export LADDKOLL_OPERATOR_PASSWORD=bench-operator-$RANDOM$RANDOM
export LADDKOLL_SIM_OPERATOR_PASSWORD=$LADDKOLL_OPERATOR_PASSWORD
URL="http://127.0.0.1:$PORT"

"$BIN" migrate >/dev/null
"$BIN" create-operator --email ops@bench.test >/dev/null
"$BIN" serve 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "$URL/readyz" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$SERVER/status"; }

echo "== provisioning $CHARGERS chargers and $DRIVERS drivers"
start=$(date +%s.%N)
"$BIN" simulate --url "$URL" --operator-email ops@bench.test --chargers "$CHARGERS" --drivers "$DRIVERS" \
    --locations $((CHARGERS / 20 + 1)) --save-fleet "$WORK/fleet.json" --provision-only
echo "provisioned in $(echo "$(date +%s.%N) - $start" | bc) s" | tee "$OUT/provision.txt"

sim() { # name, extra args...
    local name=$1; shift
    "$BIN" simulate --url "$URL" --fleet "$WORK/fleet.json" --quiet --report "$OUT/$name.json" \
        --connect-rate 500 --warmup $((CHARGERS / 500 + 20)) --meter-interval "${INTERVAL:-$METER_INTERVAL}" --session-secs 1800 --idle-secs 5 --app-share 0.05 "$@"
}

RAMP=$((CHARGERS / 500 + 10))
STEPS=${STEPS:-steady rest storm}
want() { [[ " $STEPS " == *" $1 "* ]]; }
if want steady; then
echo "== connections + steady MeterValues ($STEADY_SECS s)"
RSS_IDLE=$(rss)
sim steady --duration "$STEADY_SECS" &
SIM=$!
# Sample the server's memory once every charger is connected.
sleep "$RAMP"
RSS_CONNECTED=$(rss)
echo "server RSS idle ${RSS_IDLE} KiB, with $CHARGERS chargers connected ${RSS_CONNECTED} KiB" | tee "$OUT/memory.txt"
echo "per connection: $(( (RSS_CONNECTED - RSS_IDLE) / CHARGERS )) KiB" | tee -a "$OUT/memory.txt"
wait $SIM
echo "server peak RSS $(hwm) KiB" | tee -a "$OUT/memory.txt"
fi

if want rest && command -v wrk >/dev/null; then
    echo "== REST while the fleet keeps sending (wrk, 2 threads, 32 connections, 20 s each)"
    sim rest-load --duration $((RAMP + 50)) &
    SIM=$!
    email=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['drivers'][0]['email'])" "$WORK/fleet.json")
    password=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['drivers'][0]['password'])" "$WORK/fleet.json")
    token=$(curl -fs "$URL/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    sleep "$RAMP"
    session=$(curl -fs "$URL/api/v1/sessions?limit=1" -H "authorization: Bearer $token" |
        python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(i[0]["id"] if i else "")')
    wrk -t2 -c32 -d20s --latency -H "authorization: Bearer $token" "$URL/api/v1/sessions/$session" | tee "$OUT/rest-session.txt"
    wrk -t2 -c32 -d20s --latency -H "authorization: Bearer $token" \
        "$URL/api/v1/locations?lat=59.33&lon=18.07&radius_km=${RADIUS:-2}" | tee "$OUT/rest-locations.txt"
    wait $SIM
elif want rest; then
    echo "wrk not installed: skipping the REST benchmark (apt-get install wrk)"
fi

if want storm; then
    echo "== reconnect storm"
    sim storm --duration 90 --storm-at 45 --storm-offline 5 --storm-window 10
fi

# The highest sustained MeterValues rate: the same fleet again with a shorter meter interval
# each time (every provisioned driver charges, so the rate is about drivers / interval).
if want rates; then
    for interval in ${RATE_INTERVALS:-1.5 1 0.75 0.5}; do
        echo "== rate: MeterValues every $interval s"
        INTERVAL=$interval sim "rate-$interval" --duration "${RATE_SECS:-100}"
    done
fi

# The group writer's counters: messages per committed transaction over the whole run.
curl -fs "$URL/metrics" | grep '^laddkoll_charger_write' | tee "$OUT/charger-writes.txt" || true

python3 - "$OUT" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
names = ["steady", "rest-load", "storm"] + sorted(p.stem for p in out.glob("rate-*.json"))
for name in names:
    if not (out / f"{name}.json").exists():
        continue
    r = json.loads((out / f"{name}.json").read_text())
    mv = r["messages"]["by_action"].get("MeterValues", 0)
    print(f"{name}: chargers {r['chargers']} connects {r['connections']['connects']} failures {r['connections']['failures']} "
          f"sent {r['messages']['sent']} answered {r['messages']['answered']} errors {r['messages']['call_errors']} "
          f"timeouts {r['messages']['timeouts']} queued_at_end {r['messages']['queued_at_end']}")
    for phase, p in r["phases"].items():
        print(f"  {phase:6} {p['seconds']:7.1f} s {p['per_second']:8.1f} answers/s  latency ms p50 {p['latency_ms']['p50']} "
              f"p95 {p['latency_ms']['p95']} p99 {p['latency_ms']['p99']} max {p['latency_ms']['max']}")
    print(f"  MeterValues {mv} ({mv / r['seconds']:.0f}/s over the whole run)")
    for action, l in r["messages"]["latency_ms_by_action"].items():
        print(f"    {action:20} p50 {l['p50']} p95 {l['p95']} p99 {l['p99']} max {l['max']}")
    if r.get("storm"):
        print(f"  storm: {r['storm']}")
EOF
echo "results in $OUT"
