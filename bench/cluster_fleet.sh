#!/usr/bin/env bash
# Two instances on one PostgreSQL behind HAProxy, the fleet spread over both (BENCHMARKS.md,
# "Several instances"):
#
#   bench/cluster_fleet.sh [chargers] [drivers]      # default 20000 3000
#
# 1. provision: the fleet through the balancer (operator API), on a fresh database
# 2. steady:    every charger connects through the balancer (round robin: half land on each
#               instance) and the sessions send MeterValues every METER_INTERVAL (3 s) for
#               STEADY_SECS; the fleet runs as two `laddkoll simulate` processes, half the
#               chargers and drivers each
# 3. routed:    while the fleet sends, bench/routed_commands.py connects one more charger (the
#               Python `ocpp` package) to instance A and sends N ClearCache commands through A's
#               API (local) and N through B's (routed through PostgreSQL)
#
# Why several HAProxy processes: this machine caps every process at 20,000 descriptors (the hard
# `ulimit -n`, not raisable here), and a balancer holds two per proxied WebSocket. Four HAProxy
# processes bind the same port (SO_REUSEPORT, the kernel spreads connections over them), each
# with the README's configuration; the two simulator processes likewise hold half the chargers
# each. Results go to bench/results/cluster-<date>/.
set -euo pipefail
cd "$(dirname "$0")/.."

CHARGERS=${1:-20000}
DRIVERS=${2:-3000}
METER_INTERVAL=${METER_INTERVAL:-3}
STEADY_SECS=${STEADY_SECS:-150}
ROUTED_N=${ROUTED_N:-200}
BALANCERS=${BALANCERS:-4}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
BIN=target/release/laddkoll
VENV=target/interop-venv
OUT="bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" || true
command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)"; exit 1; }
"$VENV/bin/python" -c 'import ocpp, websockets' || { echo "run tests/interop/run.sh once first (it makes $VENV)"; exit 1; }
cargo build --release --quiet --bin laddkoll

DB=laddkoll_bench_cluster
psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" LADDKOLL_JWT_SECRET=$(head -c 48 /dev/urandom | base64)
export LADDKOLL_AUTH_RATE_PER_MINUTE=1000000 LADDKOLL_REGISTER_RATE_PER_HOUR=1000000 LADDKOLL_LOG=${LADDKOLL_LOG:-warn}
export LADDKOLL_OPERATOR_PASSWORD=bench-operator-$RANDOM$RANDOM
export LADDKOLL_SIM_OPERATOR_PASSWORD=$LADDKOLL_OPERATOR_PASSWORD

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
PA=$(port)
PB=$(port)
LB=$(port)

"$BIN" migrate >/dev/null
"$BIN" create-operator --email ops@bench.test >/dev/null
LADDKOLL_INSTANCE_ID=a LADDKOLL_BIND=127.0.0.1:$PA "$BIN" serve 2>"$OUT/instance-a.log" &
A=$!
PIDS+=("$A")
LADDKOLL_INSTANCE_ID=b LADDKOLL_BIND=127.0.0.1:$PB "$BIN" serve 2>"$OUT/instance-b.log" &
B=$!
PIDS+=("$B")
wait_up "$PA" && wait_up "$PB" || { echo "the instances did not come up"; exit 1; }

# The README's balancer configuration (tests/cluster/run.sh uses the same), with room for
# the fleet: each process holds up to maxconn client connections.
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $((CHARGERS / BALANCERS + 2000))
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option http-server-close
frontend laddkoll
    bind 127.0.0.1:$LB
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 300ms fall 2 rise 2
    server a 127.0.0.1:$PA check
    server b 127.0.0.1:$PB check
EOF
cp "$WORK/haproxy.cfg" "$OUT/haproxy.cfg"
for i in $(seq 1 "$BALANCERS"); do
    haproxy -f "$WORK/haproxy.cfg" -db >"$OUT/haproxy-$i.log" 2>&1 &
    PIDS+=($!)
done
wait_up "$LB" || { echo "haproxy did not come up"; exit 1; }
URL="http://127.0.0.1:$LB"

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "== provisioning $CHARGERS chargers and $DRIVERS drivers through the balancer"
start=$(date +%s.%N)
"$BIN" simulate --url "$URL" --operator-email ops@bench.test --chargers "$CHARGERS" --drivers "$DRIVERS" \
    --locations $((CHARGERS / 20 + 1)) --save-fleet "$WORK/fleet.json" --provision-only
echo "provisioned in $(echo "$(date +%s.%N) - $start" | bc) s" | tee "$OUT/provision.txt"

# Two halves: chargers by location (a driver's places stay in one half), drivers alternately.
python3 - "$WORK" <<'EOF'
import json, sys, pathlib
work = pathlib.Path(sys.argv[1])
fleet = json.loads((work / "fleet.json").read_text())
for half in (0, 1):
    part = {
        "chargers": [c for c in fleet["chargers"] if c["location_id"] % 2 == half],
        "drivers": fleet["drivers"][half::2],
    }
    (work / f"fleet-{half}.json").write_text(json.dumps(part))
    print(f"half {half}: {len(part['chargers'])} chargers, {len(part['drivers'])} drivers")
EOF

RAMP=$((CHARGERS / 2 / 500 + 20))
echo "== steady: $CHARGERS chargers through the balancer, MeterValues every $METER_INTERVAL s, $STEADY_SECS s"
RSS_A0=$(rss "$A")
RSS_B0=$(rss "$B")
SIMS=()
for half in 0 1; do
    "$BIN" simulate --url "$URL" --fleet "$WORK/fleet-$half.json" --quiet --report "$OUT/steady-$half.json" \
        --connect-rate 500 --warmup "$RAMP" --meter-interval "$METER_INTERVAL" --session-secs 1800 \
        --idle-secs 5 --app-share 0.05 --seed $((half + 1)) --duration "$STEADY_SECS" &
    SIMS+=($!)
done
sleep $((RAMP + 10))
{
    echo "instance a: RSS ${RSS_A0} -> $(rss "$A") KiB"
    echo "instance b: RSS ${RSS_B0} -> $(rss "$B") KiB"
    psql "$DATABASE_URL" -Atc "SELECT owner_instance, count(*) FROM charge_points WHERE online GROUP BY 1 ORDER BY 1"
} | tee "$OUT/spread.txt"

echo "== routed commands under the fleet's load ($ROUTED_N local, $ROUTED_N routed)"
"$VENV/bin/python" bench/routed_commands.py --a "http://127.0.0.1:$PA" --b "http://127.0.0.1:$PB" \
    --email ops@bench.test --password "$LADDKOLL_OPERATOR_PASSWORD" -n "$ROUTED_N" | tee "$OUT/routed.json"
for pid in "${SIMS[@]}"; do wait "$pid"; done

for inst in a b; do
    port=$PA
    [ "$inst" = b ] && port=$PB
    curl -fs "http://127.0.0.1:$port/metrics" | grep '^laddkoll_charger_write' | sed "s/^/$inst: /" | tee -a "$OUT/charger-writes.txt" || true
done

python3 - "$OUT" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("steady-*.json")):
    r = json.loads(f.read_text())
    print(f"{f.stem}: chargers {r['chargers']} connects {r['connections']['connects']} failures {r['connections']['failures']} "
          f"sent {r['messages']['sent']} answered {r['messages']['answered']} errors {r['messages']['call_errors']} "
          f"timeouts {r['messages']['timeouts']} queued_at_end {r['messages']['queued_at_end']}")
    for phase, p in r["phases"].items():
        print(f"  {phase:6} {p['seconds']:7.1f} s {p['per_second']:8.1f} answers/s  latency ms p50 {p['latency_ms']['p50']} "
              f"p95 {p['latency_ms']['p95']} p99 {p['latency_ms']['p99']} max {p['latency_ms']['max']}")
EOF
echo "results in $OUT"
