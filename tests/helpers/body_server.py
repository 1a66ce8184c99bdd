"""A fake service answering XML, HTML, text, form and binary bodies, and its candidate.

    python tests/helpers/body_server.py --port N --variant legacy|candidate [--tag T]

GET /xml/{n}   an order (application/xml); `generated` (an attribute) is a clock: noise
GET /html/{n}  a page (text/html); the `csrf` meta's content is random: noise
GET /text/{n}  a plain-text report; its first line holds a clock: noise
GET /form/{n}  an url-encoded answer; `token` is random: noise
GET /bin/{n}   bytes (application/octet-stream)
GET /health    200

The candidate writes its XML and HTML indented (whitespace-only text that means nothing) and
carries the differences `injected` lists; the tests import it to know which are real.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from aiohttp import web


def injected(kind: str, n: int) -> set[tuple[str, str]]:
    """The real differences the candidate carries for `/{kind}/{n}`: {(path, diff kind)}."""
    out: set[tuple[str, str]] = set()
    if kind == "xml":
        if n % 3 == 1:
            out.add(("/order/total", "value"))
        if n % 4 == 2:
            out.add(("/order/item[2]/@sku", "value"))
        if n % 5 == 3:
            out.add(("/order/note", "missing"))
    elif kind == "html":
        if n % 3 == 1:
            out.add(("/html/body/h1", "value"))
        if n % 4 == 2:
            out.add(("/html/body/p[2]/@class", "value"))
    elif kind == "text":
        if n % 3 == 1:
            out.add(("line:3", "value"))
        if n % 4 == 2:
            out.add(("line:5", "extra"))
    elif kind == "form":
        if n % 3 == 1:
            out.add(("/status", "value"))
        if n % 4 == 2:
            out.add(("/detail", "missing"))
    elif kind == "bin" and n % 3 == 1:
        out.add(("/", "body"))
    return out


def xml(n: int, candidate: bool) -> str:
    changes = injected("xml", n) if candidate else set()
    total = f"{n * 2}.50" if ("/order/total", "value") in changes else f"{n * 2}.00"
    sku = "B-9" if ("/order/item[2]/@sku", "value") in changes else "B-2"
    parts = [
        f'<order id="{n}" generated="{time.time_ns()}">',
        '<item sku="A-1">first</item>',
        f'<item sku="{sku}">second</item>',
        f"<total>{total}</total>",
        "" if ("/order/note", "missing") in changes else "<note>thanks</note>",
        "</order>",
    ]
    joiner = "\n  " if candidate else ""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + joiner.join(p for p in parts if p)


def html(n: int, candidate: bool) -> str:
    changes = injected("html", n) if candidate else set()
    title = f"Order {n}" + (" (new)" if ("/html/body/h1", "value") in changes else "")
    klass = "warn" if ("/html/body/p[2]/@class", "value") in changes else "info"
    parts = [
        "<!DOCTYPE html><html><head><title>Orders</title>",
        '<meta charset="utf-8">',
        f'<meta name="csrf" content="{secrets.token_hex(8)}">',
        f"</head><body><h1>{title}</h1>",
        '<p class="lead">Your order</p>',
        f'<p class="{klass}">Ships soon</p>',
        "</body></html>",
    ]
    return ("\n    " if candidate else "").join(parts)


def text(n: int, candidate: bool) -> str:
    changes = injected("text", n) if candidate else set()
    lines = [
        f"report generated {time.time_ns()}",
        f"order {n}",
        "status: shipped" if ("line:3", "value") in changes else "status: packed",
        "items: 2",
    ]
    if ("line:5", "extra") in changes:
        lines.append("gift: yes")
    return "\n".join(lines) + "\n"


def form(n: int, candidate: bool) -> str:
    changes = injected("form", n) if candidate else set()
    fields = [("order", str(n)), ("token", secrets.token_hex(8))]
    fields.append(("status", "late" if ("/status", "value") in changes else "ok"))
    if ("/detail", "missing") not in changes:
        fields.append(("detail", "two items"))
    return urlencode(fields)


def blob(n: int, candidate: bool) -> bytes:
    data = bytes([0, 159, 146, 150, n % 256]) * 8
    return data + (b"\x01" if injected("bin", n) and candidate else b"")


def make_app(variant: str) -> web.Application:
    candidate = variant == "candidate"

    def handler(kind: str) -> web.RequestHandler:  # type: ignore[type-arg]
        async def handle(request: web.Request) -> web.Response:
            n = int(request.match_info["n"])
            if kind == "xml":
                return web.Response(text=xml(n, candidate), content_type="application/xml")
            if kind == "html":
                return web.Response(text=html(n, candidate), content_type="text/html")
            if kind == "text":
                return web.Response(text=text(n, candidate), content_type="text/plain")
            if kind == "form":
                form_type = "application/x-www-form-urlencoded"
                return web.Response(text=form(n, candidate), content_type=form_type)
            return web.Response(body=blob(n, candidate), content_type="application/octet-stream")

        return handle

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    for kind in ("xml", "html", "text", "form", "bin"):
        app.router.add_get(f"/{kind}/{{n}}", handler(kind))
    app.router.add_get("/health", health)
    return app


def main() -> None:
    from pair_cli import serve_pair  # run as a script: this folder is on the path

    serve_pair(make_app)


if __name__ == "__main__":
    main()
