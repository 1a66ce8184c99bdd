"""A server that gives away every secret it sees, for the secrets fault tests.

It prints the environment variables named by `--print-env` when it starts (and again before
it exits, with `--exit-at-start` or after `--exit-after N` requests), and answers every
request with its method, path and query, its headers and body echoed back in the body, and
the credentials echoed in `X-Echo-*` response headers. The primary's body holds the echo;
the candidate's does not, so each record is a mismatch whose differences carry the secrets.
It exits by itself after --lifetime seconds, so a failing test cannot leave it running.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import sys
import threading

ECHOED = ("authorization", "x-api-key", "x-service-key", "cookie")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", choices=("primary", "candidate"), default="primary")
    parser.add_argument("--print-env", action="append", default=[], metavar="NAME")
    parser.add_argument("--exit-at-start", action="store_true")
    parser.add_argument("--exit-after", type=int, default=0, metavar="REQUESTS")
    parser.add_argument("--tag", default="", help="ignored: lets tests find their processes")
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()

    def tell_env(when: str) -> None:
        for name in args.print_env:
            print(f"{when}: {name}={os.environ.get(name)}", flush=True)

    tell_env("starting")
    if args.exit_at_start:
        print(f"fatal: cannot use {os.environ.get(args.print_env[0])}", file=sys.stderr)
        sys.exit(1)
    served = [0]
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *values: object) -> None:
            print(f"{self.command} {self.path}", flush=True)  # the log shows the query

        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            if self.path == "/health":
                self.send(200, b"{}", {})
                return
            echo = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            payload = {"variant": args.variant}
            if args.variant == "primary":
                payload["echo"] = echo
            names = {k.lower(): v for k, v in self.headers.items()}
            headers = {f"X-Echo-{k}": names[k] for k in ECHOED if k in names}
            answer = json.dumps(payload).encode()
            if self.path.startswith("/text"):  # not JSON: a `body` difference with excerpts
                answer = f"{args.variant} saw {json.dumps(echo)}".encode()
            self.send(200, answer, headers)
            with lock:
                served[0] += 1
                if args.exit_after and served[0] >= args.exit_after:
                    tell_env("exiting")
                    os._exit(3)

        def send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
