"""OCPP 1.6J interop suite: the independent Python `ocpp` package (ocpp.v16.ChargePoint) is
the charge point, laddkoll's REST API (/api/v1) sets up and observes.

Run by tests/interop/run.sh, which starts the server. Environment:
  INTEROP_BASE_URL        http://127.0.0.1:PORT of a running `laddkoll serve`
  INTEROP_OPERATOR_EMAIL  an operator made with `laddkoll create-operator`
  INTEROP_OPERATOR_PASSWORD
  INTEROP_HEARTBEAT_SECS  the LADDKOLL_OCPP_HEARTBEAT_SECS the server runs with
  INTEROP_LABEL           a name for this run in the summary (e.g. sqlite, postgres)
  INTEROP_ONLY            optional: a substring selecting scenarios
  INTEROP_VERBOSE=1       log every OCPP frame

Every scenario registers its own charge point, drivers and cards (names unique per run, so a
reused database is fine) and runs under a timeout. The last line printed is
`[label] N passed, N failed`; the exit code is 1 when anything failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import sys
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from importlib import metadata

import websockets
from ocpp.exceptions import (
    FormationViolationError,
    NotImplementedError as OcppNotImplemented,
    OccurenceConstraintViolationError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus

BASE = os.environ.get("INTEROP_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
WS_BASE = BASE.replace("http://", "ws://", 1)
OPERATOR_EMAIL = os.environ.get("INTEROP_OPERATOR_EMAIL", "ops@example.se")
OPERATOR_PASSWORD = os.environ.get("INTEROP_OPERATOR_PASSWORD", "")
HEARTBEAT_SECS = int(os.environ.get("INTEROP_HEARTBEAT_SECS", "300"))
LABEL = os.environ.get("INTEROP_LABEL", "interop")
RUN = secrets.token_hex(3)  # keeps ids, emails and uids unique per run
DRIVER_PASSWORD = "correct horse battery staple"
SCENARIO_TIMEOUT = 40.0
HTTP_TIMEOUT = 15.0
OCPP_TIMEOUT = 10

WEBSOCKETS_MAJOR = int(websockets.__version__.split(".")[0])


class Failure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def equal(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


# --- time -----------------------------------------------------------------------------------


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_ago(m: float) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(minutes=m)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- REST (stdlib, run in a thread so the charger's event loop keeps answering) -------------


def _http(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}/api/v1{path}", data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, payload


async def api(method, path, body=None, token=None, expect=None):
    status, payload = await asyncio.to_thread(_http, method, path, body, token)
    if expect is not None and status != expect:
        raise Failure(f"{method} {path}: expected HTTP {expect}, got {status}: {payload}")
    return status, payload


async def get(path, token):
    return (await api("GET", path, token=token, expect=200))[1]


async def poll(what, fetch, ok, timeout=10.0):
    """Calls `fetch` until `ok(value)`; fails with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise Failure(f"{what}: still {value!r} after {timeout}s")
        await asyncio.sleep(0.1)


async def session_until(token, sid, status, timeout=10.0):
    return await poll(
        f"session {sid} becoming {status}",
        lambda: get(f"/sessions/{sid}", token),
        lambda s: s.get("status") == status,
        timeout,
    )


# --- setup through the API ------------------------------------------------------------------

_operator_token = None


async def operator():
    global _operator_token
    if _operator_token is None:
        _, body = await api(
            "POST",
            "/auth/login",
            {"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
            expect=200,
        )
        equal(body.get("token_type"), "Bearer", "login token_type")
        _operator_token = body["access_token"]
    return _operator_token


@dataclasses.dataclass
class Site:
    location_id: int
    cp: str
    key: str


async def site(tag: str) -> Site:
    """A location with a two-connector charge point (AC 22 kW and DC 150 kW)."""
    op = await operator()
    _, loc = await api(
        "POST",
        "/admin/locations",
        {
            "name": f"Interop {tag} {RUN}",
            "address": "Götgatan 1",
            "city": "Stockholm",
            "country": "SE",
            "lat": 59.3165,
            "lon": 18.0717,
            "timezone": "Europe/Stockholm",
        },
        token=op,
        expect=201,
    )
    cp_id = f"PY-{tag}-{RUN}"
    _, cp = await api(
        "POST",
        "/admin/charge-points",
        {
            "id": cp_id,
            "location_id": loc["id"],
            "connectors": [
                {"connector_id": 1, "standard": "IEC_62196_T2", "power_kw": 22.0, "current_type": "AC"},
                {"connector_id": 2, "standard": "IEC_62196_T2_COMBO", "power_kw": 150.0, "current_type": "DC"},
            ],
        },
        token=op,
        expect=201,
    )
    check(isinstance(cp.get("password"), str) and len(cp["password"]) >= 16, f"charger key returned once: {cp}")
    return Site(loc["id"], cp_id, cp["password"])


async def driver(tag: str) -> str:
    email = f"{tag.lower()}-{RUN}@example.se"
    _, me = await api(
        "POST",
        "/auth/register",
        {"email": email, "password": DRIVER_PASSWORD, "name": f"Driver {tag}"},
        expect=201,
    )
    equal(me.get("role"), "driver", "registered role")
    _, tokens = await api("POST", "/auth/login", {"email": email, "password": DRIVER_PASSWORD}, expect=200)
    return tokens["access_token"]


def new_uid() -> str:
    return "0A" + secrets.token_hex(4).upper()  # 10 hex digits, unique per run


async def add_card(token: str, uid: str) -> int:
    _, card = await api("POST", "/me/rfid-cards", {"uid": uid, "label": "Interop card"}, token=token, expect=201)
    equal(card.get("status"), "active", "new card status")
    return card["id"]


# --- the charge point: the ocpp package's ChargePoint over `websockets` ---------------------


class Tap:
    """The connection handed to ChargePoint. It passes every frame through, except answers to
    raw frames this suite sent itself (registered by message id), which it keeps for the test."""

    def __init__(self, ws):
        self.ws = ws
        self.waiting: dict[str, asyncio.Future] = {}

    async def send(self, message):
        await self.ws.send(message)

    async def recv(self):
        while True:
            message = await self.ws.recv()
            try:
                frame = json.loads(message)
            except ValueError:
                return message
            if (
                isinstance(frame, list)
                and len(frame) > 1
                and frame[0] in (3, 4)
                and frame[1] in self.waiting
            ):
                future = self.waiting.pop(frame[1])
                if not future.done():
                    future.set_result(frame)
                continue
            return message

    async def raw(self, text: str, answer_id: str):
        """Sends a raw text frame and returns the frame answering `answer_id`."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[answer_id] = future
        await self.ws.send(text)
        try:
            return await asyncio.wait_for(future, OCPP_TIMEOUT)
        finally:
            self.waiting.pop(answer_id, None)


class PyCharger(ChargePoint):
    """The Python package's charge point, plus handlers for the central system's calls."""

    def __init__(self, cp_id, tap):
        super().__init__(cp_id, tap, response_timeout=OCPP_TIMEOUT)
        self.tap = tap
        self.meter_wh = 50_000
        self.remote_start_requests = []
        self.remote_stop_requests = []
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()  # the StartTransaction answer after a remote start
        self.stopped = loop.create_future()  # the StopTransaction answer after a remote stop
        self.config_requests = []

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag, connector_id=None, **kwargs):
        self.remote_start_requests.append({"id_tag": id_tag, "connector_id": connector_id})
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_start_transaction)
    async def after_remote_start(self, id_tag, connector_id=None, **kwargs):
        try:
            await self.call(call.StatusNotification(connector_id=connector_id or 1, error_code="NoError", status="Preparing", timestamp=iso(minutes_ago(0))))
            answer = await self.call(
                call.StartTransaction(
                    connector_id=connector_id or 1,
                    id_tag=id_tag,
                    meter_start=self.meter_wh,
                    timestamp=iso(minutes_ago(0)),
                ),
                suppress=False,
            )
            self.started.set_result(answer)
        except Exception as e:  # noqa: BLE001 - handed to the waiting test
            self.started.set_exception(e)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id, **kwargs):
        self.remote_stop_requests.append(transaction_id)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id, **kwargs):
        try:
            answer = await self.call(
                call.StopTransaction(
                    meter_stop=self.meter_wh,
                    timestamp=iso(minutes_ago(0)),
                    transaction_id=transaction_id,
                    reason="Remote",
                ),
                suppress=False,
            )
            self.stopped.set_result(answer)
        except Exception as e:  # noqa: BLE001
            self.stopped.set_exception(e)

    # Core configuration calls: the charger's side of GetConfiguration, ChangeConfiguration,
    # ClearCache, DataTransfer and Reset, recorded for the scenarios to inspect.
    config_requests: list
    authorization_key = "factory-key-0000"
    reject_key_change = False
    drop_on_reset = False

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None, **kwargs):
        self.config_requests.append(("GetConfiguration", key))
        known = {"HeartbeatInterval": "300", "AuthorizationKey": self.authorization_key}
        wanted = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on(Action.change_configuration)
    async def on_change_configuration(self, key, value, **kwargs):
        self.config_requests.append(("ChangeConfiguration", key, value))
        if key == "AuthorizationKey":
            if self.reject_key_change:
                return call_result.ChangeConfiguration(status="Rejected")
            self.authorization_key = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.clear_cache)
    async def on_clear_cache(self, **kwargs):
        self.config_requests.append(("ClearCache",))
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None, **kwargs):
        self.config_requests.append(("DataTransfer", vendor_id, message_id, data))
        return call_result.DataTransfer(status="Accepted", data=f"pong:{data}")

    @on(Action.reset)
    async def on_reset(self, type, **kwargs):  # noqa: A002 - the OCPP field name
        self.config_requests.append(("Reset", type))
        if self.drop_on_reset:
            await self.tap.ws.close()  # a power cut before the answer
        return call_result.Reset(status="Accepted")

    async def send(self, payload, **kwargs):
        """A call whose CALLERROR raises (the package's own exception for the code)."""
        return await self.call(payload, suppress=False, **kwargs)


def basic_auth(cp_id: str, key: str) -> dict:
    token = base64.b64encode(f"{cp_id}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def open_ws(cp_id: str, key: str | None):
    headers = basic_auth(cp_id, key) if key is not None else {}
    url = f"{WS_BASE}/ocpp/{cp_id}"
    if WEBSOCKETS_MAJOR >= 14:
        from websockets.asyncio.client import connect

        return await connect(url, subprotocols=["ocpp1.6"], additional_headers=headers, open_timeout=OCPP_TIMEOUT)
    return await websockets.connect(url, subprotocols=["ocpp1.6"], extra_headers=headers, open_timeout=OCPP_TIMEOUT)


def refused_status(e: Exception):
    """The HTTP status of a refused WebSocket upgrade, or None."""
    response = getattr(e, "response", None)
    if response is not None and hasattr(response, "status_code"):
        return response.status_code
    return getattr(e, "status_code", None)


@contextlib.asynccontextmanager
async def connected(s: Site, boot=True):
    ws = await open_ws(s.cp, s.key)
    equal(ws.subprotocol, "ocpp1.6", "negotiated subprotocol")
    cp = PyCharger(s.cp, Tap(ws))
    task = asyncio.create_task(cp.start())
    try:
        if boot:
            answer = await cp.send(call.BootNotification(charge_point_model="PyCharger-22", charge_point_vendor="InteropTest", firmware_version="2.1.0"))
            equal(answer.status, "Accepted", "BootNotification status")
        yield cp
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await ws.close()


async def status(cp: PyCharger, connector: int, state: str, at: datetime, error="NoError"):
    await cp.send(call.StatusNotification(connector_id=connector, error_code=error, status=state, timestamp=iso(at)))


def sample(value, measurand, unit, **extra):
    return {"value": value, "measurand": measurand, "unit": unit, **extra}


# --- scenarios ------------------------------------------------------------------------------


async def boot_status_and_location_view():
    s = await site("BOOT")
    token = await driver("boot")
    before = await get(f"/locations/{s.location_id}", token)
    equal(before["charge_points"][0]["online"], False, "online before connecting")

    ws = await open_ws(s.cp, s.key)
    cp = PyCharger(s.cp, Tap(ws))
    task = asyncio.create_task(cp.start())
    try:
        boot = await cp.send(call.BootNotification(charge_point_model="PyCharger-22", charge_point_vendor="InteropTest", charge_point_serial_number="SN-1", firmware_version="2.1.0"))
        equal(boot.status, "Accepted", "BootNotification status")
        equal(boot.interval, HEARTBEAT_SECS, "BootNotification interval")
        parse_time(boot.current_time)  # a real timestamp
        beat = await cp.send(call.Heartbeat())
        check(abs(parse_time(beat.current_time) - datetime.now(timezone.utc)) < timedelta(minutes=1), f"Heartbeat time {beat.current_time}")
        await status(cp, 0, "Available", minutes_ago(1))
        await status(cp, 1, "Available", minutes_ago(1))
        await status(cp, 2, "Faulted", minutes_ago(1), error="GroundFailure")
        # An older status delivered late does not overwrite a newer one.
        await status(cp, 1, "Charging", minutes_ago(30))

        loc = await get(f"/locations/{s.location_id}", token)
        view = loc["charge_points"][0]
        equal(view["id"], s.cp, "charge point id")
        equal(view["online"], True, "online after boot")
        equal(view["vendor"], "InteropTest", "vendor from BootNotification")
        equal(view["model"], "PyCharger-22", "model from BootNotification")
        connectors = {c["connector_id"]: c for c in view["connectors"]}
        equal(connectors[1]["status"], "Available", "connector 1 status")
        equal(connectors[2]["status"], "Faulted", "connector 2 status")
        equal(connectors[2]["power_kw"], 150.0, "connector 2 power")
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await ws.close()
    await poll(
        "charger offline after disconnecting",
        lambda: get(f"/locations/{s.location_id}", token),
        lambda l: l["charge_points"][0]["online"] is False,
    )


async def rfid_authorize_accepted_and_refused():
    s = await site("RFID")
    token = await driver("rfid")
    uid = new_uid()
    card = await add_card(token, uid)
    async with connected(s) as cp:
        ok = await cp.send(call.Authorize(id_tag=uid))
        equal(ok.id_tag_info["status"], "Accepted", "registered card")
        unknown = await cp.send(call.Authorize(id_tag=new_uid()))
        equal(unknown.id_tag_info["status"], "Invalid", "unknown card")
        not_a_uid = await cp.send(call.Authorize(id_tag="NOT-A-CARD"))
        equal(not_a_uid.id_tag_info["status"], "Invalid", "tag that is not a uid")

        _, patched = await api("PATCH", f"/me/rfid-cards/{card}", {"status": "blocked"}, token=token, expect=200)
        equal(patched["status"], "blocked", "card after blocking")
        blocked = await cp.send(call.Authorize(id_tag=uid))
        equal(blocked.id_tag_info["status"], "Blocked", "blocked card")
        # StartTransaction with the blocked card: answered (never refused), status Blocked.
        started = await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=1_000, timestamp=iso(minutes_ago(1))))
        equal(started.id_tag_info["status"], "Blocked", "StartTransaction with a blocked card")
        check(isinstance(started.transaction_id, int), "a transactionId even when refused")
        await cp.send(call.StopTransaction(meter_stop=1_000, timestamp=iso(minutes_ago(0)), transaction_id=started.transaction_id))

        await api("PATCH", f"/me/rfid-cards/{card}", {"status": "active"}, token=token, expect=200)
        again = await cp.send(call.Authorize(id_tag=uid))
        equal(again.id_tag_info["status"], "Accepted", "unblocked card")


async def full_transaction_with_live_energy():
    s = await site("TX")
    token = await driver("tx")
    uid = new_uid()
    await add_card(token, uid)
    t0 = minutes_ago(40)
    async with connected(s) as cp:
        await status(cp, 1, "Preparing", t0 - timedelta(seconds=30))
        started = await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=120_000, timestamp=iso(t0)))
        equal(started.id_tag_info["status"], "Accepted", "StartTransaction idTagInfo")
        tx = started.transaction_id
        check(isinstance(tx, int) and tx > 0, f"transactionId {tx!r}")
        await status(cp, 1, "Charging", t0 + timedelta(seconds=5))

        live = await get(f"/sessions/{tx}", token)
        equal((live["status"], live["energy_wh"]), ("active", 0), "session right after the start")

        await cp.send(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": iso(t0 + timedelta(minutes=10)),
            "sampledValue": [
                sample("122500", "Energy.Active.Import.Register", "Wh", context="Sample.Periodic"),
                sample("11000", "Power.Active.Import", "W"),
                sample("40", "SoC", "Percent", location="EV"),
            ],
        }]))
        live = await get(f"/sessions/{tx}", token)
        equal((live["status"], live["energy_wh"], live["power_w"], live["soc"]), ("active", 2_500, 11_000, 40), "live view after 10 min")

        # kWh and kW are converted; the driver sees the energy live.
        await cp.send(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": iso(t0 + timedelta(minutes=20)),
            "sampledValue": [
                sample("124.750", "Energy.Active.Import.Register", "kWh"),
                sample("10.5", "Power.Active.Import", "kW"),
                sample("52", "SoC", "Percent"),
            ],
        }]))
        live = await get(f"/sessions/{tx}", token)
        equal((live["energy_wh"], live["power_w"], live["soc"]), (4_750, 10_500, 52), "live view after 20 min")
        equal(live["origin"], "rfid", "origin")
        equal(parse_time(live["started_at"]), t0, "started_at is the charger's timestamp")

        await status(cp, 1, "SuspendedEV", t0 + timedelta(minutes=25))
        signed = "OCMF|{\"FV\":\"1.0\",\"RD\":[{\"RV\":126.0,\"RU\":\"kWh\"}]}|{\"SD\":\"3045022100ab\"}"
        stop = await cp.send(call.StopTransaction(
            meter_stop=126_000,
            timestamp=iso(t0 + timedelta(minutes=30)),
            transaction_id=tx,
            id_tag=uid,
            reason="Local",
            transaction_data=[{
                "timestamp": iso(t0 + timedelta(minutes=30)),
                "sampledValue": [
                    sample("126000", "Energy.Active.Import.Register", "Wh", context="Transaction.End"),
                    sample(signed, "Energy.Active.Import.Register", "Wh", context="Transaction.End", format="SignedData"),
                ],
            }],
        ))
        equal(stop.id_tag_info["status"], "Accepted", "StopTransaction idTagInfo")

    done = await get(f"/sessions/{tx}", token)
    equal(done["status"], "finished", "status after StopTransaction")
    equal(done["energy_wh"], 6_000, "energy_wh = meterStop - meterStart")
    equal((done["meter_start_wh"], done["meter_stop_wh"]), (120_000, 126_000), "meter readings")
    equal(parse_time(done["stopped_at"]), t0 + timedelta(minutes=30), "stopped_at")
    equal(done["stop_reason"], "Local", "stop_reason")
    equal(done["flags"], [], "no integrity flags on a clean session")
    check(done["power_w"] is None, f"no live power after the end: {done['power_w']}")
    equal(done["idle_seconds"], 5 * 60, "idle seconds (SuspendedEV for the last 5 min)")
    # The 5 s of Preparing after the start count as neither or as charging, by accounting rule.
    check(25 * 60 - 5 <= done["charging_seconds"] <= 25 * 60, f"charging seconds {done['charging_seconds']}")

    values = (await get(f"/sessions/{tx}/meter-values?limit=100", token))["items"]
    equal(len(values), 8, "meter values stored (3 + 3 + 2 from transactionData)")
    signed_rows = [v for v in values if v["format"] == "SignedData"]
    equal([v["value"] for v in signed_rows], [signed], "signed data kept verbatim")
    check(signed_rows[0]["normalized"] is None, "signed data is not read as a number")
    kwh = [v for v in values if v["unit"] == "kWh"]
    equal((kwh[0]["value"], kwh[0]["normalized"]), ("124.750", 124_750), "kWh reading as sent and normalised")


async def app_unlock_answered_by_the_python_charger():
    s = await site("APP")
    token = await driver("app")
    async with connected(s) as cp:
        await status(cp, 1, "Available", minutes_ago(1))
        cp.meter_wh = 80_000
        status_code, body = await api("POST", "/sessions", {"charge_point_id": s.cp, "connector_id": 1}, token=token)
        equal(status_code, 202, f"POST /sessions answer {body}")
        equal(body["status"], "pending", "new app session")
        sid = body["id"]

        started = await asyncio.wait_for(cp.started, OCPP_TIMEOUT)
        equal(len(cp.remote_start_requests), 1, "RemoteStartTransaction calls")
        request = cp.remote_start_requests[0]
        equal(request["connector_id"], 1, "RemoteStartTransaction connectorId")
        check(0 < len(request["id_tag"]) <= 20, f"app idTag {request['id_tag']!r} fits IdToken")
        equal(started.transaction_id, sid, "transactionId is the app session's id")
        equal(started.id_tag_info["status"], "Accepted", "StartTransaction with the app tag")

        active = await session_until(token, sid, "active")
        equal(active["origin"], "app", "origin")

        await status(cp, 1, "Charging", minutes_ago(0))
        await cp.send(call.MeterValues(connector_id=1, transaction_id=sid, meter_value=[{
            "timestamp": iso(minutes_ago(0)),
            "sampledValue": [sample("81500", "Energy.Active.Import.Register", "Wh")],
        }]))
        equal((await get(f"/sessions/{sid}", token))["energy_wh"], 1_500, "live energy of the app session")

        cp.meter_wh = 83_000
        status_code, body = await api("POST", f"/sessions/{sid}/stop", {}, token=token)
        equal(status_code, 202, f"POST /sessions/{sid}/stop answer {body}")
        equal(body["status"], "Accepted", "the charger's answer passed through")
        equal(cp.remote_stop_requests, [sid], "RemoteStopTransaction transactionId")
        await asyncio.wait_for(cp.stopped, OCPP_TIMEOUT)

        done = await session_until(token, sid, "finished")
        equal(done["energy_wh"], 3_000, "energy of the app session")
        equal(done["stop_reason"], "Remote", "stop_reason")
        sessions = (await get("/sessions", token))["items"]
        equal([x["id"] for x in sessions], [sid], "the driver's sessions")


async def replayed_start_transaction_is_idempotent():
    s = await site("REPLAY")
    token = await driver("replay")
    uid = new_uid()
    await add_card(token, uid)
    async with connected(s) as cp:
        request = call.StartTransaction(connector_id=2, id_tag=uid, meter_start=7_000, timestamp=iso(minutes_ago(5)))
        first = await cp.send(request)
        second = await cp.send(request)
        equal(second.transaction_id, first.transaction_id, "transactionId of the replay")
        equal(second.id_tag_info["status"], "Accepted", "the replay is not ConcurrentTx with itself")
        sessions = (await get("/sessions", token))["items"]
        equal([x["id"] for x in sessions], [first.transaction_id], "one session for the replayed start")
        equal(sessions[0]["status"], "active", "the session")
        # A different start (another time) on the same card is a new transaction, ConcurrentTx.
        other = await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=9_000, timestamp=iso(minutes_ago(1))))
        check(other.transaction_id != first.transaction_id, "a different start is a new transaction")
        equal(other.id_tag_info["status"], "ConcurrentTx", "second start while charging")


async def late_offline_stop_transaction():
    s = await site("LATE")
    token = await driver("late")
    uid = new_uid()
    await add_card(token, uid)
    t0 = minutes_ago(180)
    async with connected(s) as cp:
        tx = (await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=30_000, timestamp=iso(t0)))).transaction_id
        await cp.send(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": iso(t0 + timedelta(minutes=15)),
            "sampledValue": [sample("33000", "Energy.Active.Import.Register", "Wh")],
        }]))
    # Offline: the server notices the disconnect; the session stays open.
    await poll(
        "charger offline",
        lambda: get(f"/locations/{s.location_id}", token),
        lambda l: l["charge_points"][0]["online"] is False,
    )
    equal((await get(f"/sessions/{tx}", token))["status"], "active", "session while the charger is offline")
    await asyncio.sleep(1.0)
    async with connected(s) as cp:
        # Queued while offline, delivered now with their own (old) timestamps.
        await cp.send(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": iso(t0 + timedelta(minutes=25)),
            "sampledValue": [sample("34000", "Energy.Active.Import.Register", "Wh")],
        }]))
        stop_at = t0 + timedelta(minutes=30)
        await cp.send(call.StopTransaction(meter_stop=35_000, timestamp=iso(stop_at), transaction_id=tx, reason="PowerLoss"))
        done = await get(f"/sessions/{tx}", token)
        equal(done["status"], "finished", "status after the late stop")
        equal(parse_time(done["stopped_at"]), stop_at, "stopped_at is the charger's old timestamp")
        equal(parse_time(done["started_at"]), t0, "started_at")
        equal(done["energy_wh"], 5_000, "energy_wh")
        equal(done["flags"], [], "no flags")
        # The same stop delivered again changes nothing.
        await cp.send(call.StopTransaction(meter_stop=35_000, timestamp=iso(stop_at), transaction_id=tx, reason="PowerLoss"))
        again = await get(f"/sessions/{tx}", token)
        equal((again["status"], again["energy_wh"], again["stopped_at"]), ("finished", 5_000, done["stopped_at"]), "after a replayed stop")


@dataclasses.dataclass
class FlyToTheMoon:
    """An action no OCPP 1.6 central system knows (the class name is the action)."""

    destination: str = "moon"


async def malformed_frames_get_callerrors():
    s = await site("BAD")
    async with connected(s) as cp:
        # Raw frames over the package's own socket.
        answer = await cp.tap.raw('[2,"x","StartTransaction",{"connectorId":"one"}]', "x")
        equal(answer[0], 4, f"CALLERROR for a bad payload: {answer}")
        equal(answer[2], "TypeConstraintViolation", f"error code for connectorId \"one\": {answer}")
        answer = await cp.tap.raw("this is not JSON [", "-1")
        equal((answer[0], answer[2]), (4, "FormationViolation"), f"non-JSON frame: {answer}")
        answer = await cp.tap.raw('[2,"y","Heartbeat"]', "y")
        equal((answer[0], answer[2]), (4, "FormationViolation"), f"frame with a missing payload: {answer}")

        # Bad payloads built by the package (its schema check skipped); the package turns the
        # CALLERROR into its own exception for the code.
        async def error_of(payload):
            try:
                await cp.send(payload, skip_schema_validation=True)
            except Exception as e:  # noqa: BLE001
                return e
            raise Failure(f"{type(payload).__name__} {payload} was answered, not refused")

        e = await error_of(call.StartTransaction(connector_id=1, id_tag=None, meter_start=0, timestamp=iso(minutes_ago(1))))
        check(isinstance(e, OccurenceConstraintViolationError), f"missing idTag: {e!r}")
        e = await error_of(call.StartTransaction(connector_id="one", id_tag="AABBCCDD", meter_start=0, timestamp=iso(minutes_ago(1))))
        check(isinstance(e, TypeConstraintViolationError), f"connectorId \"one\": {e!r}")
        e = await error_of(call.Authorize(id_tag="A" * 30))
        check(isinstance(e, PropertyConstraintViolationError), f"idTag of 30 characters: {e!r}")
        e = await error_of(FlyToTheMoon())
        check(isinstance(e, OcppNotImplemented), f"unknown action: {e!r}")
        check(not isinstance(e, FormationViolationError), "not a formation violation")

        # The connection still serves.
        beat = await cp.send(call.Heartbeat())
        check(parse_time(beat.current_time).year >= 2024, f"Heartbeat after the errors: {beat}")
        ok = await cp.send(call.Authorize(id_tag=new_uid()))
        equal(ok.id_tag_info["status"], "Invalid", "Authorize after the errors")


async def wrong_key_is_refused_before_the_upgrade():
    s = await site("KEY")
    attempts = [
        ("wrong key", s.cp, s.key[::-1] + "x"),
        ("no credentials", s.cp, None),
        ("unknown charge point", f"PY-NOBODY-{RUN}", s.key),
    ]
    for what, cp_id, key in attempts:
        try:
            ws = await open_ws(cp_id, key)
        except Exception as e:  # noqa: BLE001
            equal(refused_status(e), 401, f"{what}: HTTP status of the refused upgrade ({e!r})")
        else:
            await ws.close()
            raise Failure(f"{what}: the WebSocket upgrade was accepted")
    # The right key still works, so the refusals were about the credentials.
    async with connected(s) as cp:
        equal((await cp.send(call.Authorize(id_tag=new_uid()))).id_tag_info["status"], "Invalid", "Authorize")


# --- OCPP 1.6 Core completeness (issue: a stop that crashes pricing is lost) ----------------


async def priced(s: Site):
    """Gives the site's charge point a tariff: 2 kr/kWh, 6 kr/h, 5 kr start, 60 kr/h idle."""
    op = await operator()
    _, tariff = await api("POST", "/admin/tariffs", {"name": f"Interop {RUN}", "vat_rate": 25, "tariff": {
        "currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 2.00, "step_size": 1},
                                  {"type": "TIME", "price": 6.00, "step_size": 60},
                                  {"type": "FLAT", "price": 5.00, "step_size": 1}]},
            {"price_components": [{"type": "PARKING_TIME", "price": 60.00, "step_size": 60}]}]}},
        token=op, expect=201)
    await api("PUT", f"/admin/charge-points/{s.cp}/tariff", {"tariff_id": tariff["id"]}, token=op, expect=204)


def iso_us(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def sub_millisecond_statuses_with_a_tariff_and_a_stop_sent_twice():
    s = await site("SUBMS")
    await priced(s)
    token = await driver("subms")
    uid = new_uid()
    await add_card(token, uid)
    t0 = minutes_ago(30).replace(microsecond=0)
    async with connected(s) as cp:
        tx = (await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=10_000, timestamp=iso(t0)))).transaction_id
        # Charging and SuspendedEV 0.5 ms apart, then more changes with no timestamp at all
        # (laddkoll's receive times), as the widely used simulator sends them.
        at = t0 + timedelta(seconds=5)
        await cp.send(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=iso_us(at)))
        await cp.send(call.StatusNotification(connector_id=1, error_code="NoError", status="SuspendedEV", timestamp=iso_us(at + timedelta(microseconds=500))))
        for state in ["Charging", "SuspendedEV", "Charging", "SuspendedEV"]:
            await cp.send(call.StatusNotification(connector_id=1, error_code="NoError", status=state))
        live = await get(f"/sessions/{tx}", token)
        equal(live["status"], "active", "live session")
        stop = call.StopTransaction(meter_stop=14_000, timestamp=iso(minutes_ago(0)), transaction_id=tx)
        first = await cp.send(stop)  # a CALLERROR would raise here
        second = await cp.send(stop)  # the charger resends after a lost answer
        check(first is not None and second is not None, "both stops answered")
        done = await get(f"/sessions/{tx}", token)
        equal((done["status"], done["energy_wh"]), ("finished", 4_000), "the stop is stored")
        equal(done["cost"]["state"], "priced", f"priced, not held: {done['cost']}")
        check(done["cost"]["excl_vat"] >= 800 + 500, f"4 kWh at 2 kr plus the start fee: {done['cost']}")
        listed = await get("/sessions", token)
        equal([x["id"] for x in listed["items"]], [tx], "stored once")


async def authorize_answers_from_the_card_and_any_ci_string_tag_is_a_card():
    s = await site("CITAG")
    token = await driver("citag")
    tag = f"TAG-{RUN}"  # not hex: any CiString20 is an idTag
    await add_card(token, tag)
    async with connected(s) as cp:
        ok = await cp.send(call.Authorize(id_tag=tag.lower()))
        equal(ok.id_tag_info["status"], "Accepted", "a CiString tag matches case-insensitively")
        first = await cp.send(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=0, timestamp=iso(minutes_ago(2))))
        equal(first.id_tag_info["status"], "Accepted", "first start")
        again = await cp.send(call.Authorize(id_tag=tag))
        equal(again.id_tag_info["status"], "Accepted", "Authorize while charging (never ConcurrentTx)")
        second = await cp.send(call.StartTransaction(connector_id=2, id_tag=tag, meter_start=0, timestamp=iso(minutes_ago(1))))
        equal(second.id_tag_info["status"], "ConcurrentTx", "ConcurrentTx only in StartTransaction")
        for t in (first.transaction_id, second.transaction_id):
            await cp.send(call.StopTransaction(meter_stop=100, timestamp=iso(minutes_ago(0)), transaction_id=t))


async def core_configuration_operations_from_the_operator_api():
    s = await site("CONF")
    op = await operator()
    async with connected(s) as cp:
        _, got = await api("POST", f"/admin/charge-points/{s.cp}/get-configuration", {"keys": ["HeartbeatInterval", "AuthorizationKey", "Nope"]}, token=op, expect=200)
        keys = {k["key"]: k["value"] for k in got["response"]["configurationKey"]}
        equal(keys, {"HeartbeatInterval": "300", "AuthorizationKey": "[redacted]"}, "configuration, secret redacted")
        equal(got["response"]["unknownKey"], ["Nope"], "unknown keys")
        _, changed = await api("POST", f"/admin/charge-points/{s.cp}/change-configuration", {"key": "HeartbeatInterval", "value": "120"}, token=op, expect=200)
        equal(changed["status"], "Accepted", "ChangeConfiguration")
        _, cleared = await api("POST", f"/admin/charge-points/{s.cp}/clear-cache", token=op, expect=200)
        equal(cleared["status"], "Accepted", "ClearCache")
        _, dt = await api("POST", f"/admin/charge-points/{s.cp}/data-transfer", {"vendor_id": "se.laddkoll", "message_id": "ping", "data": "x"}, token=op, expect=200)
        equal((dt["status"], dt["response"].get("data")), ("Accepted", "pong:x"), "DataTransfer")
        equal(cp.config_requests, [
            ("GetConfiguration", ["HeartbeatInterval", "AuthorizationKey", "Nope"]),
            ("ChangeConfiguration", "HeartbeatInterval", "120"),
            ("ClearCache",),
            ("DataTransfer", "se.laddkoll", "ping", "x"),
        ], "what the charger received")


async def key_rotation_is_sent_with_change_configuration():
    s = await site("ROT")
    op = await operator()
    async with connected(s) as cp:
        cp.reject_key_change = True
        await api("POST", f"/admin/charge-points/{s.cp}/rotate-key", token=op, expect=409)
        equal((await cp.send(call.Heartbeat())) is not None, True, "still connected after a refused key")
        cp.reject_key_change = False
        _, rotated = await api("POST", f"/admin/charge-points/{s.cp}/rotate-key", token=op, expect=200)
        equal(rotated["password"], cp.authorization_key, "the charger got the new key")
        equal(rotated["delivered"], "charger", "delivered by ChangeConfiguration")

        async def closed():
            try:
                await cp.send(call.Heartbeat())
            except Exception:  # noqa: BLE001 - closed by the server
                return True
            return False

        await poll("the old-key connection closed", closed, lambda c: c, timeout=5.0)
    try:
        ws = await open_ws(s.cp, s.key)
    except Exception as e:  # noqa: BLE001
        equal(refused_status(e), 401, "the old key is refused")
    else:
        await ws.close()
        raise Failure("the old key still connects")
    s.key = rotated["password"]
    async with connected(s) as cp:
        equal((await cp.send(call.Authorize(id_tag=new_uid()))).id_tag_info["status"], "Invalid", "new key connects")


async def a_command_to_a_charger_that_disconnects_fails_at_once():
    s = await site("DROP")
    op = await operator()
    async with connected(s) as cp:
        cp.drop_on_reset = True
        # 503 (offline) is only answered when the disconnect ends the call; waiting for the
        # server's call timeout would answer 504.
        status_code, body = await api("POST", f"/admin/charge-points/{s.cp}/reset", {"type": "Soft"}, token=op)
        equal(status_code, 503, f"offline, not a timeout: {body}")
        equal(cp.config_requests, [("Reset", "Soft")], "the charger got the call")


async def operators_end_sessions_a_charger_never_stops():
    s = await site("OPS")
    other = await site("OPS2")
    op = await operator()
    token = await driver("ops")
    me = await get("/me", token)
    uid, spare = new_uid(), new_uid()
    await add_card(token, uid)
    await add_card(token, spare)
    t0 = minutes_ago(60)
    async with connected(s) as cp:
        tx = (await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=2_000, timestamp=iso(t0)))).transaction_id
        await cp.send(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": iso(t0 + timedelta(minutes=20)),
            "sampledValue": [sample("6000", "Energy.Active.Import.Register", "Wh")]}]))
    # The charger never comes back: after the stale time its session is listed for operators.
    stale = await poll("a stale session", lambda: api("GET", "/admin/sessions/stale", token=op, expect=200),
                       lambda r: any(x["id"] == tx for x in r[1]), timeout=10.0)
    check(stale is not None, "listed")
    async with connected(other) as cp2:
        # The stale session no longer locks the driver out.
        second = await cp2.send(call.StartTransaction(connector_id=1, id_tag=spare, meter_start=0, timestamp=iso(minutes_ago(1))))
        equal(second.id_tag_info["status"], "Accepted", "the driver's other card while the first session is stale")
        # Force-close the stale one: billed to its last reading, flagged, audited.
        _, closed = await api("POST", f"/admin/sessions/{tx}/force-close", {"reason": "charger replaced"}, token=op, expect=200)
        equal((closed["status"], closed["energy_wh"]), ("finished", 4_000), "force-closed at the last reading")
        equal([f["flag"] for f in closed["flags"]], ["force_closed"], "flag")
        _, events = await api("GET", "/admin/audit-events?action=session_force_closed", token=op, expect=200)
        check(any(str(tx) in (e.get("reason") or "") for e in events["items"]), "audited")
        # An operator stops the other session remotely; the charger reports the stop.
        _, answer = await api("POST", f"/admin/sessions/{second.transaction_id}/stop", token=op, expect=202)
        equal(answer["status"], "Accepted", "RemoteStopTransaction")
        await asyncio.wait_for(cp2.stopped, OCPP_TIMEOUT)
        await session_until(token, second.transaction_id, "finished")
        # And starts one for the driver.
        _, pending = await api("POST", f"/admin/charge-points/{other.cp}/remote-start", {"user_id": me["id"], "connector_id": 2}, token=op, expect=202)
        started = await asyncio.wait_for(cp2.started, OCPP_TIMEOUT)
        equal(started.transaction_id, pending["id"], "the charger's start is the operator's session")
        await session_until(token, pending["id"], "active")


async def operators_see_their_fleet():
    s = await site("FLEET")
    op = await operator()
    async with connected(s) as cp:
        await status(cp, 2, "Faulted", minutes_ago(0), error="GroundFailure")
        one = await get(f"/admin/charge-points/{s.cp}", op)
        equal((one["online"], one["vendor"], one["model"], one["firmware_version"]), (True, "InteropTest", "PyCharger-22", "2.1.0"), "boot details")
        equal((one["connectors"][1]["status"], one["connectors"][1]["error_code"]), ("Faulted", "GroundFailure"), "connector error")
        listed = await get(f"/admin/charge-points?location_id={s.location_id}&state=online", op)
        equal([x["id"] for x in listed["items"]], [s.cp], "filtered fleet list")
    await poll("offline in the fleet list", lambda: get(f"/admin/charge-points/{s.cp}", op), lambda c: c["online"] is False)


SCENARIOS = [
    boot_status_and_location_view,
    rfid_authorize_accepted_and_refused,
    full_transaction_with_live_energy,
    app_unlock_answered_by_the_python_charger,
    replayed_start_transaction_is_idempotent,
    late_offline_stop_transaction,
    malformed_frames_get_callerrors,
    wrong_key_is_refused_before_the_upgrade,
    sub_millisecond_statuses_with_a_tariff_and_a_stop_sent_twice,
    authorize_answers_from_the_card_and_any_ci_string_tag_is_a_card,
    core_configuration_operations_from_the_operator_api,
    key_rotation_is_sent_with_change_configuration,
    a_command_to_a_charger_that_disconnects_fails_at_once,
    operators_end_sessions_a_charger_never_stops,
    operators_see_their_fleet,
]


async def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="    %(name)s %(levelname)s %(message)s")
    # Expected CALLERRORs make the package log warnings; show its frames only when asked.
    logging.getLogger("ocpp").setLevel(logging.INFO if os.environ.get("INTEROP_VERBOSE") else logging.ERROR)
    only = os.environ.get("INTEROP_ONLY", "")
    print(f"[{LABEL}] ocpp {metadata.version('ocpp')}, websockets {websockets.__version__}, "
          f"server {BASE}, run {RUN}", flush=True)
    passed = failed = 0
    for scenario in SCENARIOS:
        name = scenario.__name__
        if only and only not in name:
            continue
        started = time.monotonic()
        try:
            await asyncio.wait_for(scenario(), SCENARIO_TIMEOUT)
        except asyncio.TimeoutError:
            failed += 1
            print(f"FAIL {name}: timed out after {SCENARIO_TIMEOUT:.0f}s", flush=True)
            traceback.print_exc(limit=6)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s): {e}", flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
            else:
                traceback.print_exc(limit=-2)
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
    if passed + failed == 0:
        print(f"no scenario matches INTEROP_ONLY={only!r}", flush=True)
        failed = 1
    print(f"[{LABEL}] {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
