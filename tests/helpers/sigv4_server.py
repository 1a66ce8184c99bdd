"""A server that checks each request's AWS SigV4 signature and refuses a bad one (403).

It rebuilds the canonical request from what it received (method, path, query, the signed
headers, a hash of the body it read) and the signature with the secret in the environment
variable --secret-env, for its own --region and --service; a request without a valid
signature, or one signed for another region, gets 403 and why. A valid one gets 200 and
`{"path", "body_bytes", "region"}` (the same on every target, so a signed replay matches).
`GET /health` needs no signature. It exits by itself after --lifetime seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.server
import json
import os
import re
import threading
from urllib.parse import quote, unquote

AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<names>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class Handler(http.server.BaseHTTPRequestHandler):
    secret = ""
    region = ""
    service = ""

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"ok": True})
            return
        self._checked(b"")

    def do_POST(self) -> None:
        self._checked(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _checked(self, body: bytes) -> None:
        problem = self._problem(body)
        if problem:
            self._send(403, {"error": problem})
        else:
            self._send(200, {"path": self.path, "body_bytes": len(body), "region": "ok"})

    def _problem(self, body: bytes) -> str:
        found = AUTH.fullmatch(self.headers.get("Authorization") or "")
        if found is None:
            return "no SigV4 Authorization header"
        day, region, service, _ = found["scope"].split("/")
        if (region, service) != (self.region, self.service):
            return f"signed for {region}/{service}, not {self.region}/{self.service}"
        payload = hashlib.sha256(body).hexdigest()
        if self.headers.get("X-Amz-Content-Sha256") != payload:
            return "the body is not the one signed"
        names = found["names"].split(";")
        path, _, query = self.path.partition("?")
        canonical = "\n".join(
            (
                self.command,
                quote(unquote(path), safe="/-_.~"),
                _query(query),
                "".join(f"{n}:{(self.headers.get(n) or '').strip()}\n" for n in names),
                found["names"],
                payload,
            )
        )
        amz_date = self.headers.get("X-Amz-Date") or ""
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                amz_date,
                found["scope"],
                hashlib.sha256(canonical.encode()).hexdigest(),
            )
        )
        key = ("AWS4" + self.secret).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, found["signature"]):
            return "signature does not match"
        return ""

    def _send(self, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--service", default="execute-api")
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    Handler.secret = os.environ[args.secret_env]
    Handler.region, Handler.service = args.region, args.service
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
