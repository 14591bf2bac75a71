"""Failover through the balancer: chargers charge through HAProxy, one instance is SIGKILLed
mid-traffic, the chargers whose connection it held reconnect through the balancer (to the
survivor) and resend what was not acknowledged; then every acknowledged session must be
stored once, finished once with the charger's meter, priced and on exactly one invoice.

Run by tests/cluster/run.sh. Reuses the interop suite's setup helpers and its charge point
(the independent Python `ocpp` package).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--email", required=True)
parser.add_argument("--password", required=True)
parser.add_argument("--kill-pid", type=int, required=True)
parser.add_argument("--chargers", type=int, default=8)
args = parser.parse_args()
os.environ["INTEROP_BASE_URL"] = args.base
os.environ["INTEROP_OPERATOR_EMAIL"] = args.email
os.environ["INTEROP_OPERATOR_PASSWORD"] = args.password
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))

import test_interop as t  # noqa: E402
from ocpp.v16 import call  # noqa: E402

METER_START = 10_000
STEP_WH = 100


class Run:
    def __init__(self):
        self.killed_at: float | None = None
        self.served_again: list[float] = []
        self.reconnected = 0


async def charge(i: int, s: t.Site, uid: str, run: Run, stop_event: asyncio.Event) -> tuple[int, int]:
    """Charges until told to stop, reconnecting after a lost connection; returns (tx, meterStop)."""
    tx = None
    meter = METER_START
    pending = None  # a message sent but not acknowledged: resent after a reconnect
    while True:
        try:
            ws = await t.open_ws(s.cp, s.key)
        except Exception:  # noqa: BLE001 - the balancer may still route to the dead instance
            await asyncio.sleep(0.2)
            continue
        cp = t.PyCharger(s.cp, t.Tap(ws))
        task = asyncio.create_task(cp.start())
        try:
            await cp.send(call.BootNotification(charge_point_model="Failover", charge_point_vendor="Cluster"))
            if run.killed_at is not None and tx is not None:
                run.reconnected += 1
                run.served_again.append(time.monotonic() - run.killed_at)
            if tx is None:
                answer = await cp.send(call.StartTransaction(connector_id=1, id_tag=uid, meter_start=METER_START, timestamp=t.iso(t.minutes_ago(5))))
                tx = answer.transaction_id
            while True:
                if pending is None:
                    if stop_event.is_set():
                        break
                    meter += STEP_WH
                    pending = call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
                        "timestamp": t.iso(t.minutes_ago(0)),
                        "sampledValue": [t.sample(str(meter), "Energy.Active.Import.Register", "Wh")]}])
                await cp.send(pending)
                pending = None
                await asyncio.sleep(0.05)
            await cp.send(call.StopTransaction(meter_stop=meter, timestamp=t.iso(t.minutes_ago(0)), transaction_id=tx))
            return tx, meter
        except Exception:  # noqa: BLE001 - the instance died under us: reconnect
            await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with __import__("contextlib").suppress(BaseException):
                await task
            with __import__("contextlib").suppress(Exception):
                await ws.close()


async def main() -> int:
    op = await t.operator()
    sites, tokens = [], []
    for i in range(args.chargers):
        s = await t.site(f"FO{i}")
        await t.priced(s)
        token = await t.driver(f"fo{i}")
        uid = t.new_uid()
        await t.add_card(token, uid)
        sites.append((s, uid))
        tokens.append(token)
    run = Run()
    stop_event = asyncio.Event()
    tasks = [asyncio.create_task(charge(i, s, uid, run, stop_event)) for i, (s, uid) in enumerate(sites)]
    await asyncio.sleep(2.0)
    os.kill(args.kill_pid, signal.SIGKILL)
    run.killed_at = time.monotonic()
    await asyncio.sleep(4.0)  # traffic goes on; the dead instance's lease (3 s) expires
    stop_event.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 60)

    # Every acknowledged session: stored once, finished once with the charger's meter, priced.
    for (tx, meter), token in zip(results, tokens):
        listed = await t.get("/sessions", token)
        t.equal([x["id"] for x in listed["items"]], [tx], "one session per charger")
        s = listed["items"][0]
        t.equal((s["status"], s["energy_wh"]), ("finished", meter - METER_START), f"session {tx}")
        t.equal(s["cost"]["state"], "priced", f"session {tx} priced")
    period = time.strftime("%Y-%m", time.gmtime())
    _, first = await t.api("POST", "/admin/invoice-runs", {"period": period}, token=op, expect=200)
    _, second = await t.api("POST", "/admin/invoice-runs", {"period": period}, token=op, expect=200)
    t.check(second.get("invoices_issued", 0) == 0, f"a second run bills nothing: {second}")
    for token in tokens:
        invoices = await t.get("/invoices", token)
        t.equal(len(invoices["items"]), 1, "each driver's session on exactly one invoice")
    t.check(run.reconnected >= 1, "some chargers were on the killed instance and reconnected")
    worst = max(run.served_again) if run.served_again else 0.0
    print(f"{args.chargers} chargers, {run.reconnected} reconnected after the kill, served again within {worst:.2f} s; "
          f"every acknowledged session finished once, priced, invoiced once ({first.get('invoices_issued')} invoices)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
