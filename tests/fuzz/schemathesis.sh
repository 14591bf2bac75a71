#!/usr/bin/env bash
# API fuzzing: schemathesis (tests/fuzz/requirements.txt) generates requests from the committed
# openapi/openapi.json and sends them to a real `laddkoll serve` on a fresh SQLite database that
# holds real data (an operator, a driver with an RFID card, a charged and invoiced session and
# imported history, a location, a tariff, a charge point), authenticated once as the driver and
# once as the operator. Fails on any 5xx the document does not promise, and on any response that
# breaks the documented schema or content type. Bounded: few examples per operation, a time budget per run and a hard timeout.
#
# FUZZ_SKIP_BUILD=1 uses the existing binary; FUZZ_MAX_EXAMPLES, FUZZ_SEED and FUZZ_CHECKS (a
# schemathesis check list) tune a run.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/fuzz-venv
REQUIREMENTS=tests/fuzz/requirements.txt
SCHEMA=openapi/openapi.json
BIN=${CARGO_TARGET_DIR:-target}/debug/laddkoll
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-25} # per operation and phase
# A hard limit per run. (schemathesis' --max-time is a budget to spend, not a cap: fuzzing
# repeats until it is used up, so the runs are bounded by --max-examples instead.)
RUN_TIMEOUT=${FUZZ_RUN_TIMEOUT_SECS:-150}
OPERATOR_EMAIL=ops-fuzz@example.se
DRIVER_EMAIL=driver-fuzz@example.se
PASSWORD="fuzzing passphrase 0123"
CP=SE-FUZZ-0001

SERVER_PID=""
TMP=$(mktemp -d)

say() { printf 'fuzz: %s\n' "$*"; }

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
    if [ "$rc" -ne 0 ] && [ -f "$TMP/server.log" ]; then
        say "last server log lines:"
        tail -n 40 "$TMP/server.log"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- the Python side: a venv under target/ (git-ignored), reinstalled when requirements change
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    say "schemathesis 4 needs Python >= 3.10; found $(python3 --version 2>&1)"
    exit 1
}
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if ! [ -x "$VENV/bin/schemathesis" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    say "installing $REQUIREMENTS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$want" >"$VENV/.requirements.sha256"
fi
say "$("$VENV/bin/schemathesis" --version)"

# --- the server
if [ -n "${FUZZ_SKIP_BUILD:-}" ]; then
    say "FUZZ_SKIP_BUILD is set: using the existing $BIN"
else
    say "cargo build --bin laddkoll"
    cargo build --quiet --bin laddkoll
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# The auth and registration rate limits and the account lockout are raised so that the fuzzer reaches the
# handlers instead of collecting 429s; OCPP timeouts are short so calls to chargers end quickly.
export DATABASE_URL="sqlite://$TMP/fuzz.db" LADDKOLL_BIND="127.0.0.1:$PORT" LADDKOLL_ENV=development \
    LADDKOLL_JWT_SECRET=fuzz-jwt-secret-0123456789abcdefghijklmn \
    LADDKOLL_AUTH_RATE_PER_MINUTE=1000000 LADDKOLL_LOCKOUT_THRESHOLD=1000000 \
    LADDKOLL_REGISTER_RATE_PER_HOUR=1000000 LADDKOLL_OCPP_REFUSALS_PER_MINUTE=1000000 \
    LADDKOLL_OCPP_CALL_TIMEOUT_SECS=2 LADDKOLL_APP_START_TIMEOUT_SECS=2 \
    LADDKOLL_LOG="${LADDKOLL_LOG:-warn}"

say "laddkoll create-operator --email $OPERATOR_EMAIL"
LADDKOLL_OPERATOR_PASSWORD="$PASSWORD" "$BIN" create-operator --email "$OPERATOR_EMAIL" >"$TMP/operator.log" 2>&1 || {
    cat "$TMP/operator.log"
    exit 1
}

say "laddkoll serve on $BASE"
"$BIN" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 150); do
    if curl -fsS --max-time 2 "$BASE/healthz" >/dev/null 2>&1; then
        up=1
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
[ -n "$up" ] || {
    say "the server did not come up"
    exit 1
}

# api METHOD PATH TOKEN [BODY] → the JSON body; fails unless the status is 2xx
api() {
    local method=$1 path=$2 token=$3 body=${4:-}
    local args=(-sS --max-time 30 -X "$method" -H 'content-type: application/json' -o "$TMP/body" -w '%{http_code}')
    [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
    [ -n "$body" ] && args+=(-d "$body")
    local status
    status=$(curl "${args[@]}" "$BASE/api/v1$path")
    if [ "${status:0:1}" != 2 ]; then
        say "set-up request $method $path answered $status: $(cat "$TMP/body")"
        return 1
    fi
    cat "$TMP/body"
}
# json FIELD < body → one top-level field (or items[0].FIELD with `items.FIELD`)
json() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[0][k] if isinstance(v, list) else v[k]
print(v)' "$1"; }
login() { api POST /auth/login "" "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" | json access_token; }

# --- real data, so that generated requests with ids also hit things that exist
say "provisioning an operator, a driver, a location, a tariff, a charge point, a card, sessions"
OPERATOR_TOKEN=$(login "$OPERATOR_EMAIL")
api POST /auth/register "" "{\"email\":\"$DRIVER_EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Fuzz Driver\"}" >/dev/null
DRIVER_TOKEN=$(login "$DRIVER_EMAIL")
DRIVER_ID=$(api GET /me "$DRIVER_TOKEN" | json id)
LOCATION_ID=$(api POST /admin/locations "$OPERATOR_TOKEN" '{"name":"Garage Fuzz","address":"Götgatan 1",
    "city":"Stockholm","country":"SE","lat":59.3165,"lon":18.0717,"timezone":"Europe/Stockholm"}' | json id)
TARIFF_ID=$(api POST /admin/tariffs "$OPERATOR_TOKEN" '{"name":"Standard","vat_rate":25,"tariff":{"currency":"SEK",
    "elements":[{"price_components":[{"type":"ENERGY","price":2.00,"step_size":1},
    {"type":"FLAT","price":5.00,"step_size":1}]},
    {"price_components":[{"type":"PARKING_TIME","price":60.00,"step_size":60}]}]}}' | json id)
KEY=$(api POST /admin/charge-points "$OPERATOR_TOKEN" "{\"id\":\"$CP\",\"location_id\":$LOCATION_ID,\"tariff_id\":$TARIFF_ID,
    \"connectors\":[{\"connector_id\":1,\"standard\":\"IEC_62196_T2\",\"power_kw\":22.0,\"current_type\":\"AC\"}]}" | json password)
CARD_ID=$(api POST /me/rfid-cards "$DRIVER_TOKEN" '{"uid":"04:A1:B2:C3:D4:E5:F6","label":"Work car"}' | json id)
# A finished, priced session last month through the OCPP endpoint, and its invoice.
LAST_MONTH=$(date -u -d "$(date -u +%Y-%m-15) -1 month" +%Y-%m)
python3 tests/fuzz/charge.py "$BASE" "$CP" "$KEY" 04A1B2C3D4E5F6 "${LAST_MONTH}-10T08:00:00Z" >/dev/null
"$BIN" invoice --period "$LAST_MONTH" >"$TMP/invoice.log" 2>&1 || {
    cat "$TMP/invoice.log"
    exit 1
}
INVOICE_ID=$(api GET "/invoices?limit=1" "$DRIVER_TOKEN" | json items.id)
# Imported history of the last weeks for the driver, then the nightly job over it.
{
    echo "driver_ref,location_ref,charge_point_ref,started_at,ended_at,energy_kwh,timezone"
    for d in $(seq 2 3 40); do
        start=$(date -u -d "$d days ago 07:30" +%Y-%m-%dT%H:%M:%SZ)
        end=$(date -u -d "$d days ago 10:15" +%Y-%m-%dT%H:%M:%SZ)
        echo "$DRIVER_EMAIL,Fuzz depot,FUZZ-OLD-1,$start,$end,1$((d % 9)).5,Europe/Stockholm"
    done
} >"$TMP/history.csv"
"$BIN" import-sessions "$TMP/history.csv" >"$TMP/import.log" 2>&1 || {
    cat "$TMP/import.log"
    exit 1
}
"$BIN" recommend >"$TMP/recommend.log" 2>&1 || {
    cat "$TMP/recommend.log"
    exit 1
}
SESSION_ID=$(api GET "/sessions?limit=1" "$DRIVER_TOKEN" | json items.id)
OPERATOR_ID=$(api GET /me "$OPERATOR_TOKEN" | json id)
say "driver $DRIVER_ID, operator $OPERATOR_ID, location $LOCATION_ID, tariff $TARIFF_ID, charge point $CP, card $CARD_ID, session $SESSION_ID, invoice $INVOICE_ID"

# Ids of real things are offered to the generator half of the time; the other half it invents.
# A 5xx is a failure, except where the document promises one: an offline or silent charger
# (502/503/504 on commands to chargers and app start/stop).
cat >"$TMP/schemathesis.toml" <<EOF
[cache]
enabled = false # no .schemathesis/ in the checkout; every run starts fresh from its seed

[dictionaries.locations]
values = [$LOCATION_ID]
[dictionaries.sessions]
values = [$SESSION_ID]
[dictionaries.invoices]
values = [$INVOICE_ID]
[dictionaries.cards]
values = [$CARD_ID]
[dictionaries.tariffs]
values = [$TARIFF_ID]
[dictionaries.users]
values = [$DRIVER_ID, $OPERATOR_ID]
[dictionaries.charge_points]
values = ["$CP"]

[[operations]]
include-path-regex = "^/api/v1/locations/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "locations", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/(admin/)?sessions/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "sessions", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/(admin/)?invoices/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "invoices", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/me/rfid-cards/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "cards", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/admin/tariffs/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "tariffs", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/admin/users/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "users", probability = 0.5 } }
[[operations]]
include-path-regex = "^/api/v1/admin/charge-points/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "charge_points", probability = 0.5 } }
checks.not_a_server_error.expected-statuses = ["1xx", "2xx", "3xx", "4xx", "502", "503", "504"]
[[operations]]
include-path-regex = "^/api/v1/sessions(/\\\\{id\\\\}/stop)?$"
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["1xx", "2xx", "3xx", "4xx", "503"]
EOF

CHECKS=${FUZZ_CHECKS:-not_a_server_error,response_schema_conformance,content_type_conformance}
FAILED=0
# run_schemathesis WORKERS TOKEN LOG [schemathesis options…]
run_schemathesis() {
    local workers=$1 token=$2 log=$3
    shift 3
    timeout -k 10 "$RUN_TIMEOUT" "$VENV/bin/schemathesis" --config-file "$TMP/schemathesis.toml" \
        run "$SCHEMA" --url "$BASE" -H "Authorization: Bearer $token" \
        --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" \
        --phases examples,coverage,fuzzing --workers "$workers" --request-timeout 20 \
        --generation-database none --no-color --seed "${FUZZ_SEED:-20261125}" \
        --suppress-health-check all --warnings off "$@" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

# fuzz LABEL TOKEN [schemathesis options…]
fuzz() {
    local label=$1 token=$2 rc log
    shift 2
    log="$TMP/fuzz-$FAILED-$RANDOM.log"
    say "[$label] schemathesis run $SCHEMA --url $BASE -c $CHECKS --max-examples $MAX_EXAMPLES $*"
    set +e
    run_schemathesis 2 "$token" "$log" "$@"
    rc=$?
    # schemathesis itself can crash under CPython 3.11 with two worker threads ("SystemError:
    # AST constructor recursion depth mismatch" while formatting a traceback): an error of the
    # tool, not a finding. Such a run (a Runtime Error and no failed check) is repeated once on
    # one worker; a failed check is never retried.
    if [ "$rc" -ne 0 ] && grep -q 'Runtime Error' "$log" && ! grep -q 'Failures:' "$log"; then
        say "[$label] schemathesis crashed internally (no check failed); running it again on one worker"
        run_schemathesis 1 "$token" "$log" "$@"
        rc=$?
    fi
    set -e
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && say "[$label] timed out after ${RUN_TIMEOUT}s"
        say "[$label] FAILED (exit $rc)"
        FAILED=$((FAILED + 1))
    else
        say "[$label] passed"
    fi
}

# Operations that can end the run's own identity (deleting the account, changing its password,
# an operator blocking an account, possibly its own) are fuzzed after everything else.
LAST=(delete_me change_password block_user)
fuzz driver "$DRIVER_TOKEN" "${LAST[@]/#/--exclude-operation-id=}"
fuzz operator "$OPERATOR_TOKEN" "${LAST[@]/#/--exclude-operation-id=}"
fuzz "operator, last" "$OPERATOR_TOKEN" "${LAST[@]/#/--include-operation-id=}"
fuzz "driver, last" "$DRIVER_TOKEN" "${LAST[@]/#/--include-operation-id=}"

[ "$FAILED" -eq 0 ] || {
    say "$FAILED run(s) failed"
    exit 1
}
say "all runs passed"
