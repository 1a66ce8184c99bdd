"""A `curl` command line that sends an event's request again, to whichever target you choose.

The base url is the shell variable `$TARGET`, and each header whose value was redacted, or that
an auth profile adds, becomes a `$NAME` placeholder (the header name upper-cased, other
characters turned into `_`), so the command holds no secret and works against either side:

    TARGET=http://127.0.0.1:8002 AUTHORIZATION='...' sh -c "$(jq -r .curl event.json)"

Headers a target's own config adds (`[targets.*] headers`) are not part of the request, so they
are not in the command either.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from shadow.model import HOP_BY_HOP_HEADERS, REDACTED, request_target

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9]")


def placeholder(header: str) -> str:
    """`X-API-Key` -> `X_API_KEY`: the shell variable standing for a header's secret value."""
    name = _NOT_A_NAME.sub("_", header).upper()
    return f"_{name}" if name[:1].isdigit() else name


def curl_command(request: Mapping[str, Any], auth_header: str | None = None) -> str:
    """The command line for a request in native record form, secrets as placeholders."""
    method = str(request.get("method", "GET"))
    args = ["curl", "-sS", "-g", "--path-as-is"]
    args += ["--head"] if method == "HEAD" else ["-X", shlex.quote(method)]
    path = request_target(str(request.get("path", "/")))  # as the replayer sends it
    args.append('"$TARGET"' + shlex.quote(path))
    names: set[str] = set()
    for name, value in _headers(request.get("headers")):
        lower = name.lower()
        if lower in HOP_BY_HOP_HEADERS or (auth_header and lower == auth_header.lower()):
            continue
        names.add(lower)
        if value == REDACTED:
            args += ["-H", _secret_header(name)]
        else:
            args += ["-H", shlex.quote(f"{name}: {value}")]
    if auth_header:
        args += ["-H", _secret_header(auth_header)]
    if "body" in request and "content-type" not in names:
        args += ["-H", shlex.quote("Content-Type: application/json")]
    return _with_body(" ".join(args), request)


def _with_body(command: str, request: Mapping[str, Any]) -> str:
    if "body" in request:
        json_text = orjson.dumps(request["body"]).decode()
        return f"{command} --data-binary {shlex.quote(json_text)}"
    text = request.get("body_text")
    if isinstance(text, str) and "\x00" not in text:
        return f"{command} --data-binary {shlex.quote(text)}"
    encoded: Any = request.get("body_b64")
    if isinstance(text, str):
        encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    if isinstance(encoded, str):
        # Bytes a shell argument cannot carry go through a pipe, decoded on the way.
        return f"printf %s {shlex.quote(encoded)} | base64 -d | {command} --data-binary @-"
    return command


def _headers(value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(pair[0]), str(pair[1])) for pair in value if len(pair) == 2]
    return []


def _secret_header(name: str) -> str:
    """`"Name: $NAME"`: double quotes, so the placeholder expands and the name stays literal."""
    escaped = re.sub(r'(["\\$`])', r"\\\1", name)
    return f'"{escaped}: ${placeholder(name)}"'
