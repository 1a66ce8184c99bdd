"""Static JSON servers for the benchmarks: the same body for every path, as fast as we can serve it.

The benchmark measures the client, so the servers should cost as little as possible: on a small
machine the servers share the CPU with the client under test. nginx serving one static file is
the cheapest choice and is used when an nginx binary is found (on PATH, or named by `--nginx` or
the NGINX environment variable); otherwise a raw low-level aiohttp server on uvloop stands in.
Both answer every request with the same realistic JSON body of about `--body-bytes` bytes;
variant `b` differs from `a` in one field, so a comparator sees a mismatch on every pair.

Run one server by hand: `python bench/servers.py --port 8081 --body-bytes 1024 [--variant b]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

import orjson

_ADDRESS = "0x" + "ab12" * 10


def make_body(body_bytes: int, variant: str = "a") -> bytes:
    """A score-API-like JSON object of about `body_bytes` bytes; `b` differs in one field."""
    stamps: dict[str, object] = {}
    doc: dict[str, object] = {
        "address": _ADDRESS,
        "score": "23.456789" if variant == "a" else "23.456790",
        "status": "DONE",
        "last_score_timestamp": "2026-11-27T10:15:39.584000+00:00",
        "expiration_date": None,
        "evidence": {
            "type": "ThresholdScoreCheck",
            "success": True,
            "rawScore": 23.456789,
            "threshold": 20.0,
        },
        "error": None,
        "stamp_scores": stamps,
    }
    providers = (
        "Google",
        "Github",
        "Discord",
        "Twitter",
        "Linkedin",
        "Ens",
        "Brightid",
        "Poh",
        "Gitcoin",
        "Snapshot",
        "Lens",
        "Holonym",
        "Civic",
        "Coinbase",
    )
    for i in range(body_bytes):
        name = f"{providers[i % len(providers)]}{i // len(providers) or ''}"
        stamps[name] = {
            "score": round(0.5 + (i * 37 % 100) / 40, 3),
            "dedup": i % 7 == 0,
            "expiration_date": f"2027-0{1 + i % 9}-1{i % 10}T00:00:00Z",
        }
        if len(orjson.dumps(doc)) > body_bytes - 20:
            del stamps[name]
            break
    # Pad to the exact size with a request id, as real APIs often echo one.
    missing = body_bytes - len(orjson.dumps(doc)) - len(',"request_id":""')
    if missing > 0:
        doc["request_id"] = ("r-" + "7f3a9c" * (missing // 6 + 1))[:missing]
    return orjson.dumps(doc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_nginx(explicit: str | None = None) -> str | None:
    """An nginx binary: `explicit`, else $NGINX, else PATH (plus sbin dirs), else None."""
    for candidate in (explicit, os.environ.get("NGINX")):
        if candidate:
            return candidate if os.access(candidate, os.X_OK) else None
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin"
    return shutil.which("nginx", path=path)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                resp.read()
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server for {url} not ready within {timeout_s}s")


_NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    default_type application/json;
    etag off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{
            root {root};
            try_files /body.json =404;
        }}
    }}
}}
"""


class ServerPair:
    """Named static servers on free 127.0.0.1 ports; a context manager that stops them all."""

    def __init__(
        self, body_bytes: int, kind: str = "auto", nginx: str | None = None, cpus: str = ""
    ) -> None:
        self.body_bytes = body_bytes
        self.cpus = cpus  # pin every server to these CPUs (`taskset -c`), e.g. "1"
        self.nginx = find_nginx(nginx) if kind in ("auto", "nginx") else None
        if kind == "nginx" and self.nginx is None:
            raise RuntimeError("--server nginx: no nginx binary found (PATH, --nginx, $NGINX)")
        self.kind = "nginx" if self.nginx else "aiohttp"
        self.urls: dict[str, str] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="shadow-bench-srv-")

    @property
    def description(self) -> str:
        if self.nginx:
            version = subprocess.run(
                [self.nginx, "-v"], check=False, capture_output=True, text=True
            )
            return f"{version.stderr.strip() or 'nginx'} ({self.nginx}), 1 worker per server"
        return "aiohttp low-level server on uvloop (bench/servers.py), 1 process per server"

    def start(self, name: str, variant: str) -> str:
        port = free_port()
        if self.nginx:
            root = Path(self._tmp.name) / name
            (root / "tmp").mkdir(parents=True)
            (root / "body.json").write_bytes(make_body(self.body_bytes, variant))
            conf = root / "nginx.conf"
            conf.write_text(_NGINX_CONF.format(root=root, port=port))
            argv = [self.nginx, "-p", str(root), "-e", "stderr", "-c", str(conf)]
        else:
            argv = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--port",
                str(port),
                "--body-bytes",
                str(self.body_bytes),
                "--variant",
                variant,
            ]
        if self.cpus:
            argv = ["taskset", "-c", self.cpus, *argv]  # taskset execs: the pid is the server's
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/ready", proc)
        self.urls[name] = url
        return url

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve(port: int, body: bytes) -> None:
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.can_read_body:
            await request.read()
        return web.Response(body=body, content_type="application/json")

    server = web.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    listener = await loop.create_server(server, "127.0.0.1", port, backlog=1024)
    try:
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--variant", choices=("a", "b"), default="a")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port, make_body(args.body_bytes, args.variant)))


if __name__ == "__main__":
    main()
