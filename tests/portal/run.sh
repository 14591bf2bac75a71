#!/usr/bin/env bash
# The web portal in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
# driven over WebDriver (selenium) against the real `laddkoll serve --demo` on a fresh SQLite
# database, with a simulated OCPP charger. Screenshots of every page at phone and desktop width
# go to target/portal-shots/; the run fails on any browser console error and on any serious or
# critical axe-core violation (axe-core comes from the npm registry into target/, not committed).
#
#   bash tests/portal/run.sh                    # the check (CI runs this)
#   PORTAL_DOCS=1 bash tests/portal/run.sh      # also refresh the README's images in docs/portal/
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/portal-venv
NPM_DIR=target/portal-npm
AXE_VERSION=4.14.1
REQUIREMENTS=tests/portal/requirements.txt
BIN=target/debug/laddkoll
SHOTS=target/portal-shots
TIMEOUT=${PORTAL_TIMEOUT:-300}
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver || true)}

say() { printf 'portal: %s\n' "$*"; }

if [ -z "$CHROMIUM" ] || [ -z "$CHROMEDRIVER" ]; then
    say "chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)"
    exit 1
fi

# --- Python side: a venv under target/, reinstalled when the requirements change
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if ! "$VENV/bin/python" -c 'import selenium, websockets' 2>/dev/null ||
    [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    say "installing $REQUIREMENTS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$want" >"$VENV/.requirements.sha256"
fi

# --- axe-core from the npm registry, kept under target/
AXE="$NPM_DIR/node_modules/axe-core/axe.min.js"
if ! grep -q "\"version\": \"$AXE_VERSION\"" "$NPM_DIR/node_modules/axe-core/package.json" 2>/dev/null; then
    say "npm install axe-core@$AXE_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "axe-core@$AXE_VERSION" >/dev/null
fi

# --- the server
if [ -n "${PORTAL_SKIP_BUILD:-}" ]; then
    say "PORTAL_SKIP_BUILD is set: using the existing $BIN"
else
    say "cargo build --bin laddkoll"
    cargo build --quiet --bin laddkoll
fi

TMP=$(mktemp -d)
SERVER_PID=""
finish() {
    local rc=$?
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$TMP/server.log" ]; then
        say "last server log lines:"
        tail -n 30 "$TMP/server.log"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$TMP/portal.db" LADDKOLL_BIND="127.0.0.1:$port" \
    LADDKOLL_JWT_SECRET=portal-jwt-secret-0123456789abcdefghijk \
    LADDKOLL_APP_START_TIMEOUT_SECS=30 LADDKOLL_OCPP_CALL_TIMEOUT_SECS=10 \
    LADDKOLL_LOG="${LADDKOLL_LOG:-warn}"
say "laddkoll serve --demo on 127.0.0.1:$port"
"$BIN" serve --demo >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 300); do
    if curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 &&
        [ -f "$TMP/demo-credentials.json" ]; then
        up=1
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
[ -n "$up" ] || { say "the server did not come up"; exit 1; }

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
PORTAL_BASE_URL="http://127.0.0.1:$port" PORTAL_CREDENTIALS="$TMP/demo-credentials.json" \
    PORTAL_SHOTS="$SHOTS" PORTAL_AXE="$AXE" PORTAL_CHROMIUM="$CHROMIUM" \
    PORTAL_CHROMEDRIVER="$CHROMEDRIVER" PORTAL_PROFILE="$TMP/chromium-profile" \
    SE_OFFLINE=true PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    timeout -k 5 "$TIMEOUT" "$VENV/bin/python" tests/portal/test_portal.py

if [ -n "${PORTAL_DOCS:-}" ]; then
    mkdir -p docs/portal
    for shot in session-live-phone start-phone history-desktop recommendations-desktop \
        demo-location-desktop operator-held-desktop; do
        cp "$SHOTS/$shot.png" "docs/portal/$shot.png"
    done
    say "README images refreshed in docs/portal/"
fi
