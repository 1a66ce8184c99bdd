"""A candidate for the `--recorded` tests: answers like the recorded primary but for one field.

`GET /users/N` answers the user as JSON with the current time in `at` (a clock the recorded
answer holds too, at another time); user 2's name differs from the recorded one (the real
difference); `GET /plain` answers gzip-compressed JSON, as a server that compresses does.
It exits by itself after --lifetime seconds, so a failing test cannot leave it running.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import http.server
import json
import threading

USERS = {1: "ada", 2: "bob (rewrite)", 3: "cy"}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b"ok", "text/plain")
        elif self.path == "/plain":
            body = gzip.compress(json.dumps({"items": [1, 2, 3]}).encode())
            self._send(200, body, "application/json", {"Content-Encoding": "gzip"})
        elif self.path.startswith("/users/") and self.path[7:].isdigit():
            number = int(self.path[7:])
            if number not in USERS:
                self._send(404, b'{"error": "not found"}', "application/json")
                return
            now = datetime.datetime.now(datetime.UTC).isoformat()
            user = {"id": number, "name": USERS[number], "at": now}
            self._send(200, json.dumps(user).encode(), "application/json")
        else:
            self._send(404, b"no such path", "text/plain")

    def _send(
        self, status: int, body: bytes, media: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
