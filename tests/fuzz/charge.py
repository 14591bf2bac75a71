"""One finished charging session through the real OCPP endpoint, for the API fuzzer's data.

Usage: charge.py BASE_URL CHARGE_POINT_ID KEY ID_TAG START_RFC3339

Boots the charger, starts a transaction with ID_TAG at START, sends a meter value and stops it
two hours later, then disconnects; prints the transaction id. Standard library only (a minimal
RFC 6455 client), so the fuzzer's venv needs nothing besides schemathesis.
"""

import base64
import json
import os
import socket
import struct
import sys
from datetime import datetime, timedelta
from urllib.parse import urlparse


class Charger:
    def __init__(self, base, cp, key):
        url = urlparse(base)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=20)
        self.io = self.sock.makefile("rb")
        auth = base64.b64encode(f"{cp}:{key}".encode()).decode()
        nonce = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ocpp/{cp} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: ocpp1.6\r\nAuthorization: Basic {auth}\r\n\r\n"
            ).encode()
        )
        status = self.io.readline().decode()
        if " 101 " not in status:
            raise SystemExit(f"upgrade refused: {status.strip()}")
        while self.io.readline() not in (b"\r\n", b""):
            pass
        self.next_id = 0

    def _send(self, opcode, data):
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _recv(self):
        while True:
            b0, b1 = self.io.read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self.io.read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self.io.read(8))
            data = self.io.read(n)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                return json.loads(data)
            if opcode == 0x9:
                self._send(0xA, data)
            elif opcode == 0x8:
                raise SystemExit("the server closed the connection")

    def call(self, action, payload):
        self.next_id += 1
        mid = str(self.next_id)
        self._send(0x1, json.dumps([2, mid, action, payload]).encode())
        while True:
            frame = self._recv()
            if frame[0] == 3 and frame[1] == mid:
                return frame[2]
            if frame[0] == 4 and frame[1] == mid:
                raise SystemExit(f"{action} answered with CALLERROR {frame[2:]}")
            if frame[0] == 2:  # a call from the server: not expected here; refuse it
                self._send(0x1, json.dumps([4, frame[1], "NotSupported", "", {}]).encode())

    def close(self):
        self._send(0x8, struct.pack("!H", 1000))
        self.sock.close()


def main():
    base, cp, key, id_tag, start = sys.argv[1:6]
    t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
    at = lambda minutes: (t0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    c = Charger(base, cp, key)
    c.call("BootNotification", {"chargePointVendor": "Fuzz", "chargePointModel": "Stdlib"})
    c.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
    started = c.call(
        "StartTransaction", {"connectorId": 1, "idTag": id_tag, "meterStart": 1000, "timestamp": at(0)}
    )
    tx = started["transactionId"]
    c.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": at(60),
                    "sampledValue": [
                        {"value": "9000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }
            ],
        },
    )
    c.call("StopTransaction", {"transactionId": tx, "meterStop": 15000, "timestamp": at(120)})
    c.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
    c.close()
    print(tx)


if __name__ == "__main__":
    main()
