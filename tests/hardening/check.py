#!/usr/bin/env python3
"""Replays the security review's requests (issue 14) against a running `laddkoll serve`.

Standard library only. Usage: check.py BASE_URL OPERATOR_EMAIL OPERATOR_PASSWORD SERVER_LOG
Prints `ok NAME` or `FAIL NAME: why` per check and `N passed, N failed` last.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

BASE, OPERATOR_EMAIL, OPERATOR_PASSWORD, SERVER_LOG = sys.argv[1:5]
URL = urllib.parse.urlparse(BASE)
PASSWORD = "correct horse battery staple"
RUN = uuid.uuid4().hex[:8]

passed = 0
failed = 0


def request(method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("content-type", "application/json")
    try:
        conn.request(method, path, body=data, headers=h)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        return 0, {}, str(e).encode()
    finally:
        conn.close()


def api(method, path, body=None, token=None, headers=None):
    h = dict(headers or {})
    if token:
        h["authorization"] = f"Bearer {token}"
    status, hdrs, raw = request(method, "/api/v1" + path, body, h)
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return status, hdrs, doc


def code(doc):
    return (doc or {}).get("error", {}).get("code")


def check(name):
    def run(f):
        global passed, failed
        try:
            f()
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - any crash of a check is its failure
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        else:
            passed += 1
            print(f"ok {name}", flush=True)
        return f

    return run


def login(email, password=PASSWORD):
    status, _, doc = api("POST", "/auth/login", {"email": email, "password": password})
    return status, doc


def driver(email):
    status, _, doc = api("POST", "/auth/register", {"email": email, "password": PASSWORD, "name": "Check Driver"})
    assert status == 201, f"register {email}: {status} {doc}"
    status, doc = login(email)
    assert status == 200, f"login {email}: {status} {doc}"
    return doc["access_token"], doc["id"] if "id" in doc else None


status, OPERATOR = login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
if status != 200:
    print(f"FAIL set-up: operator login answered {status}: {OPERATOR}")
    print("0 passed, 1 failed")
    sys.exit(1)
OPERATOR = OPERATOR["access_token"]


def audit(action, **filters):
    q = urllib.parse.urlencode({"action": action, "limit": 100, **filters})
    status, _, doc = api("GET", f"/admin/audit-events?{q}", token=OPERATOR)
    assert status == 200, f"audit events: {status} {doc}"
    return doc["items"]


def metrics():
    status, _, raw = request("GET", "/metrics")
    assert status == 200, f"/metrics answered {status}"
    return raw.decode()


@check("1 unknown methods are refused (405) and never become metric labels")
def _():
    status, headers, raw = request("FOOBAR", "/api/v1/me")
    assert status == 405, f"FOOBAR answered {status}"
    assert json.loads(raw)["error"]["code"] == "method_not_allowed", raw[:200]
    assert "GET" in headers.get("allow", ""), headers
    before = len(metrics())
    for i in range(200):
        request("X" * 60_000 + str(i), "/healthz")
    text = metrics()
    assert "XXXX" not in text, "a method name is a label"
    assert len(text) < before + 20_000, f"/metrics grew from {before} to {len(text)} bytes"
    labels = {line.split('method="')[1].split('"')[0] for line in text.splitlines() if 'method="' in line}
    assert labels <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, labels


@check("2 forty parallel guesses: at most the threshold is checked, and the lock holds")
def _():
    email = f"target-{RUN}@example.se"
    status, _, doc = api("POST", "/auth/register", {"email": email, "password": PASSWORD, "name": "Target"})
    assert status == 201, f"register: {status} {doc}"
    user_id = doc["id"]
    answers = []
    lock = threading.Lock()

    def guess():
        s, _ = login(email, "wrong password here")
        with lock:
            answers.append(s)

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s == 401 for s in answers), answers
    checked = len(audit("login_failed", user_id=user_id))
    assert checked <= 5, f"{checked} guesses were checked against the password"
    s, doc = login(email)
    assert s == 401, f"the right password after the lock answered {s}"
    assert len(audit("account_locked", user_id=user_id)) >= 1, "no account_locked event"


def upgrade(cp_path):
    return request(
        "GET",
        f"/ocpp/{cp_path}",
        headers={
            "connection": "Upgrade",
            "upgrade": "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-protocol": "ocpp1.6",
            "authorization": "Basic Tk9QRTp3cm9uZw==",
        },
    )


@check("4 control characters in an id cannot forge a log line")
def _():
    marker = f"FORGED{RUN}"
    upgrade(f"SE%0D%0A{marker}%20INFO%20operator%20logged%20in%1B%5B2K")
    time.sleep(0.5)
    with open(SERVER_LOG, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    assert not any(line.startswith(marker) for line in lines), "a forged line is in the log"
    assert not any("\x1b[2K" in line for line in lines), "a raw escape sequence is in the log"
    assert any(marker in line for line in lines), "the refusal was not logged at all (LADDKOLL_LOG?)"


@check("3 long charge point ids are refused, audited short, and refusals rate limited")
def _():
    status, _, _ = upgrade("A" * 60_000)
    assert 400 <= status < 500, f"a 60,000-character id answered {status}"
    status, _, raw = upgrade("B" * 500)
    assert status in (400, 429), f"a 500-character id answered {status}: {raw[:200]}"
    statuses = [upgrade(f"NO-SUCH-CP-{RUN}")[0] for _ in range(40)]
    assert 429 in statuses, f"40 refused upgrades from one address were never limited: {set(statuses)}"
    rows = audit("charger_connection_refused")
    assert rows, "refusals are audited"
    for row in rows:
        assert len(row["actor"]) <= 100, f"audit actor of {len(row['actor'])} characters"
        assert len(row.get("charge_point_id") or "") <= 48, "audit charge_point_id over 48 characters"
        assert len(row.get("reason") or "") <= 520, "audit reason unbounded"
    assert len(rows) <= 25, f"{len(rows)} refusal rows for 42 refused upgrades"


@check("5 unblocking does not revive tokens issued before the block")
def _():
    email = f"blocked-{RUN}@example.se"
    token, _ = driver(email)
    status, _, me = api("GET", "/me", token=token)
    uid = me["id"]
    assert api("POST", f"/admin/users/{uid}/block", {}, token=OPERATOR)[0] == 200
    assert api("POST", f"/admin/users/{uid}/unblock", {}, token=OPERATOR)[0] == 200
    status, _, doc = api("GET", "/me", token=token)
    assert status == 401, f"the old token answered {status} {doc}"


@check("7 registrations are rationed per address")
def _():
    statuses = []
    for _ in range(30):
        s, _, doc = api("POST", "/auth/register", {"email": OPERATOR_EMAIL, "password": PASSWORD, "name": "Probe"})
        statuses.append(s)
        if s == 429:
            break
    assert statuses[-1] == 429, f"30 registrations of a taken email: {statuses}"


@check("8 weak passwords are refused")
def _():
    for i, weak in enumerate(["        ", "aaaaaaaa", "Summer2024!", "P@ssw0rd!"]):
        s, _, doc = api("POST", "/auth/register", {"email": f"weak{i}-{RUN}@example.se", "password": weak, "name": "W"})
        assert (s, code(doc)) in ((422, "weak_password"), (429, "rate_limited")), f"{weak!r}: {s} {doc}"


TARIFF = lambda price: {  # noqa: E731
    "name": "Huge",
    "vat_rate": 25,
    "tariff": {"currency": "SEK", "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}]},
}


@check("9 huge prices are refused, the largest accepted one prices")
def _():
    s, _, doc = api("POST", "/admin/tariffs", TARIFF(1e18), token=OPERATOR)
    assert (s, code(doc)) == (422, "invalid_tariff"), f"price 1e18: {s} {doc}"
    s, _, doc = api("POST", "/admin/tariffs", TARIFF(1_000_001), token=OPERATOR)
    assert (s, code(doc)) == (422, "invalid_tariff"), f"price 1000001: {s} {doc}"
    s, _, doc = api("POST", "/admin/tariffs", TARIFF(1_000_000), token=OPERATOR)
    assert s == 201, f"price 1000000: {s} {doc}"
    s, _, doc = api("GET", "/admin/sessions", token=OPERATOR)
    assert s == 200, f"session list: {s}"


@check("10 bidi controls and look-alike letters are refused in emails and names")
def _():
    for email, name, want in [
        (f"\u0430nna-{RUN}@example.se", "Anna", "invalid_email"),
        (f"anna-{RUN}@example.se", "Anna \u202enosrednA", "invalid_name"),
        (f"anna-{RUN}@example.se", "\u0410nna", "invalid_name"),
    ]:
        s, _, doc = api("POST", "/auth/register", {"email": email, "password": PASSWORD, "name": name})
        assert (s, code(doc)) in ((422, want), (429, "rate_limited")), f"{email!r} {name!r}: {s} {doc}"


@check("11 authenticated answers are no-store and nosniff")
def _():
    s, h, _ = api("GET", "/me", token=OPERATOR)
    assert s == 200
    assert h.get("cache-control") == "no-store", h.get("cache-control")
    assert h.get("x-content-type-options") == "nosniff", h.get("x-content-type-options")
    s, h, _ = api("GET", "/invoices/1/pdf", token=OPERATOR)
    assert h.get("cache-control") == "no-store", f"invoice pdf: {h.get('cache-control')}"


@check("12 a cookie-mode logout needs the CSRF token")
def _():
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request("POST", "/api/v1/auth/login?mode=cookie",
                 body=json.dumps({"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}),
                 headers={"content-type": "application/json"})
    res = conn.getresponse()
    assert res.status == 200, f"cookie login: {res.status}"
    cookies = "; ".join(v.split(";")[0] for k, v in res.getheaders() if k.lower() == "set-cookie")
    res.read()
    conn.close()
    s, _, doc = api("POST", "/auth/logout", headers={"cookie": cookies})
    assert (s, code(doc)) == (403, "csrf_failed"), f"logout without X-CSRF-Token: {s} {doc}"


print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
