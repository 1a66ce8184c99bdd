"""A tiny HTTP server for the supervisor tests, run as a real child process.

Each option is one way a real server misbehaves: never healthy, exits at start, ignores SIGTERM,
leaves a grandchild behind, dies mid-run. Whatever happens, it exits by itself after --lifetime
seconds, so a failing test cannot leave it running for long.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

GRANDCHILD = """
import signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(float(sys.argv[2]))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=200, help="what every GET answers")
    parser.add_argument("--start-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--exit-at-start", type=int, default=None, metavar="CODE")
    parser.add_argument("--die-after", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--exit-code", type=int, default=7)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--grandchild", choices=["normal", "ignore"], default=None)
    parser.add_argument("--print-env", action="store_true")
    parser.add_argument("--lifetime", type=float, default=20.0)
    args = parser.parse_args()

    print(f"fake server pid {os.getpid()} port {args.port}", flush=True)
    if args.print_env:
        print("ENV " + json.dumps(dict(os.environ), sort_keys=True), flush=True)
    time.sleep(args.start_delay)
    if args.exit_at_start is not None:
        print("fatal: DATABASE_URL is not set", file=sys.stderr, flush=True)
        sys.exit(args.exit_at_start)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.grandchild:
        child = subprocess.Popen(
            [sys.executable, "-c", GRANDCHILD, args.grandchild, str(args.lifetime)]
        )
        print(f"grandchild {child.pid}", flush=True)
    exit_later(args.lifetime, 0)
    if args.die_after is not None:
        exit_later(args.die_after, args.exit_code)
    serve(args.port, args.status)


def exit_later(delay_s: float, code: int) -> None:
    def run() -> None:
        time.sleep(delay_s)
        print(f"exiting with {code}", flush=True)
        os._exit(code)

    threading.Thread(target=run, daemon=True).start()


def serve(port: int, status: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the log to what the tests look for

    with http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        print("listening", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
