"""A stateful CRUD API for the correlation tests: each copy hands out its own ids.

`POST /orders` creates an order from the JSON body and answers it with the next id of this
copy's sequence (`--first-id`: 1001 for the legacy, 1 for the rewrite), `201`, a `Location`
and an `ETag` (a hash of id and version, so the two copies' ETags differ too). `GET`, `PATCH`
(which needs `If-Match` with the current ETag, else 412) and `DELETE` address an order by id
in the path; an unknown id is 404. `--bug-total` makes PATCH answer a wrong `total` (a real
difference a correlated lane must still show). `POST /reset` forgets every order and starts
the sequence again (204). `GET /health` answers 200. Each order also
names its `parent` by id when the body gives one. The server exits by itself after
`--lifetime` seconds, so a failing test cannot leave it running.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import threading
from typing import Any

ORDERS: dict[int, dict[str, Any]] = {}
LOCK = threading.Lock()
STATE = {"next": 1, "first": 1, "bug": False}


def etag(order: dict[str, Any]) -> str:
    digest = hashlib.sha1(f"{order['id']}:{order['version']}".encode()).hexdigest()
    return f'"{digest}"'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"ok": True})
            return
        order = self._order()
        if order is not None:
            self._send(200, order, {"ETag": etag(order)})

    def do_POST(self) -> None:
        if self.path == "/reset":
            with LOCK:
                ORDERS.clear()
                STATE["next"] = STATE["first"]
            self._send(204, None)
            return
        if self.path != "/orders":
            self._send(404, {"error": "no such path"})
            return
        body = self._body()
        with LOCK:
            number = STATE["next"]
            STATE["next"] += 1
            order = {"id": number, "item": body.get("item"), "total": body.get("total", 0)}
            order["version"] = 1
            if "parent" in body:
                order["parent"] = body["parent"]
            ORDERS[number] = order
        self._send(201, order, {"ETag": etag(order), "Location": f"/orders/{number}"})

    def do_PATCH(self) -> None:
        order = self._order()
        if order is None:
            return
        if self.headers.get("If-Match") != etag(order):
            self._send(412, {"error": "stale ETag"})
            return
        body = self._body()
        with LOCK:
            order.update({k: v for k, v in body.items() if k in ("item", "total")})
            order["version"] += 1
            if STATE["bug"] and "total" in body:
                order["total"] = body["total"] + 1
        self._send(200, order, {"ETag": etag(order)})

    def do_DELETE(self) -> None:
        order = self._order()
        if order is not None:
            with LOCK:
                ORDERS.pop(order["id"], None)
            self._send(204, None)

    def _order(self) -> dict[str, Any] | None:
        parts = self.path.partition("?")[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "orders" and parts[1].isdigit():
            order = ORDERS.get(int(parts[1]))
            if order is not None:
                return order
        self._body()
        self._send(404, {"error": "not found"})
        return None

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _send(self, status: int, value: Any, extra: dict[str, str] | None = None) -> None:
        body = b"" if value is None else json.dumps(value).encode()
        self.send_response(status)
        if value is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, text in (extra or {}).items():
            self.send_header(name, text)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--bug-total", action="store_true")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    STATE["next"] = STATE["first"] = args.first_id
    STATE["bug"] = args.bug_total
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
