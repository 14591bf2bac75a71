"""Routed-command latency (BENCHMARKS.md, "Several instances"): one charger (the Python `ocpp`
package) connected to instance A; N ClearCache commands sent through A's API (local: straight
to the socket) and N through B's API (routed: a charger_commands row, NOTIFY, A calls the charger,
the answer on the row). Prints p50/p95/p99/max of API request → answer for both, as JSON.

    bench/routed_commands.sh [N]     # starts two instances on a fresh PostgreSQL database
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--a", required=True)
parser.add_argument("--b", required=True)
parser.add_argument("--email", required=True)
parser.add_argument("--password", required=True)
parser.add_argument("-n", type=int, default=200)
args = parser.parse_args()
os.environ["INTEROP_BASE_URL"] = args.a
os.environ["INTEROP_OPERATOR_EMAIL"] = args.email
os.environ["INTEROP_OPERATOR_PASSWORD"] = args.password
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))

import test_interop as t  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def measure(base: str, cp: str, op: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        status, body = await asyncio.to_thread(
            _post, base, f"/admin/charge-points/{cp}/clear-cache", {}, op)
        out.append((time.perf_counter() - started) * 1000)
        t.equal(status, 200, f"ClearCache through {base}: {body}")
    return out


def _post(base, path, body, token):
    saved = t.BASE
    t.BASE = base
    try:
        return t._http("POST", path, body, token)
    finally:
        t.BASE = saved


async def main() -> int:
    op = await t.operator()
    s = await t.site("LAT")
    async with t.connected(s) as cp:  # through A (INTEROP_BASE_URL)
        await measure(args.a, s.cp, op, 10)  # warm-up
        local = await measure(args.a, s.cp, op, args.n)
        routed = await measure(args.b, s.cp, op, args.n)
    report = {
        name: {"n": len(xs), "p50_ms": round(pct(xs, 50), 1), "p95_ms": round(pct(xs, 95), 1),
               "p99_ms": round(pct(xs, 99), 1), "max_ms": round(max(xs), 1)}
        for name, xs in (("local", local), ("routed", routed))
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
