"""A stateful server for the reset tests: a counter kept in a file, which a reset zeroes.

`POST /next` adds one and answers `{"n": N}`; `GET /count` answers it without a change;
`POST /reset` zeroes it (204), or answers --reset-status instead when given (a reset that
fails); `GET /health` answers ok. `--zero FILE` is the command reset: it writes 0 to FILE and
exits (with --exit-code, a failing one; with --hang, one that never ends, after starting a
child that would outlive it). The server exits by itself after --lifetime seconds, so a
failing test cannot leave it running.
"""

from __future__ import annotations

import argparse
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    state: Path
    reset_status: int = 204

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b"ok")
        elif self.path == "/count":
            with LOCK:
                self._send(200, json.dumps({"n": self._read()}).encode())
        else:
            self._send(404, b"no such path")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/next":
            with LOCK:
                n = self._read() + 1
                self.state.write_text(str(n))
            self._send(200, json.dumps({"n": n}).encode())
        elif self.path == "/reset":
            if self.reset_status == 204:
                with LOCK:
                    self.state.write_text("0")
            body = b"" if self.reset_status == 204 else b"reset refused: the store is read-only"
            self._send(self.reset_status, body)
        else:
            self._send(404, b"no such path")

    def _read(self) -> int:
        return int(self.state.read_text() or 0) if self.state.exists() else 0

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def zero(state: Path, exit_code: int, hang: bool) -> None:
    """The command reset: print what it does, zero the counter (or fail, or hang)."""
    print(f"zeroing {state}", flush=True)
    if hang:
        # A child in the same group that would outlive this process: the reset's timeout
        # must take both.
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(60)
    if exit_code:
        print("cannot zero: the store is locked", flush=True)
        sys.exit(exit_code)
    state.write_text("0")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--reset-status", type=int, default=204)
    parser.add_argument("--lifetime", type=float, default=60.0)
    parser.add_argument("--zero", type=Path)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--tag", default="")  # in the command line, to find leftovers
    args = parser.parse_args()
    if args.zero is not None:
        zero(args.zero, args.exit_code, args.hang)
        return
    Handler.state = args.state
    Handler.reset_status = args.reset_status
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
