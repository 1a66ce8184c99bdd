"""The plain values that flow through shadow, and the vocabulary every stage shares.

Records in (and the problems met reading them), responses back, differences out, progress
samples; the names a difference or a rule may use; what goes on the wire and what is a secret;
the caps on per-endpoint tables. Nothing here does I/O or imports any shadow module but the
error tree, so every stage can be tested with values built by hand.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from shadow.errors import InvalidValue, check_at_least

Headers = tuple[tuple[str, str], ...]

SIDES = ("primary", "candidate")
# The outcome key of the primary's second answer when calibrating without a secondary.
REPEAT = "repeat"
SAFE_METHODS = ("GET", "HEAD")

# The `kind` of a Difference (README "Events").
DIFF_KINDS = ("status", "header", "type", "value", "missing", "extra", "body")
# Every spelling a `normalize` rule may use, in the order the docs list them
# (shadow.compare.normalize says what each does).
NORMALIZERS = (
    "datetime",
    "datetime:s",
    "datetime:ms",
    "datetime:us",
    "number",
    "case",
    "trim",
    "volatile",
    "sorted",
    "null_is_missing",
)

# --- on the wire -----------------------------------------------------------------------------

# Headers that describe one hop or one encoding of the body: never replayed as recorded (the
# HTTP client sets its own), and left out of the `curl` line that repeats a request.
HOP_BY_HOP_HEADERS = frozenset(
    (
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "expect",
        "trailer",
    )
)
# Characters a recorded path keeps as they are; anything else is percent-encoded, so a path
# with spaces or non-ASCII text still makes a valid request line.
_URL_SAFE_CHARS = "/?&=%:@!$'()*+,;~#[]-._"
# One criterion of an endpoint's identity beyond method and route (`[[compare.endpoint]]`
# `match_*`): ("header", name, value), ("body", JSON Pointer, JSON scalar) or ("name", "", name).
Criterion = tuple[str, str, Any]
# A pattern naming lines of a text body: `line:12`, `line:3-5` or `line:*`.
LINE_PATTERN = re.compile(r"line:(?:\*|[1-9][0-9]*(?:-[1-9][0-9]*)?)")

# Request headers that carry credentials in captured traffic. Events redact them, plus
# `Set-Cookie` (a credential in an answer's headers); `[replay] recorded_auth` governs whether
# they are replayed.
CREDENTIAL_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie", "x-api-key"))
REDACTED = "[REDACTED]"

# --- caps on per-endpoint tables ---------------------------------------------------------------

# Past these, the tally, the calibration and the report count the rest under OTHER, so memory
# does not grow with the traffic.
MAX_ENDPOINTS = 500
MAX_PATHS_PER_ENDPOINT = 200
# Calibration watches more paths than a summary lists: a path counts as noise only once seen.
MAX_CALIBRATED_PATHS = 400
OTHER = "(other)"


def request_target(path: str) -> str:
    """A record's path as it goes on the request line (and into a `curl` line)."""
    return quote(path, safe=_URL_SAFE_CHARS)


@functools.lru_cache(maxsize=8192)
def fold_indices(path: str) -> str:
    """`/items/3/at` -> `/items/*/at`: array indices (ASCII digits) become `*`, so a difference
    repeated down a list counts as one path. `header:<name>` and `status` stay as they are."""
    if not path.startswith("/"):
        return path
    return "/".join("*" if s.isascii() and s.isdigit() else s for s in path.split("/"))


def statuses_text(statuses: Mapping[str, Mapping[str, int]]) -> str:
    """`primary 2xx 3, 4xx 8 (200 3, 401 8); candidate ...`: a tally's answers per target by
    class, then by exact code (the stderr summary and the reports say them alike)."""
    parts = []
    for target, counts in statuses.items():
        classes = ", ".join(f"{k} {n}" for k, n in counts.items() if not k.isdigit())
        codes = ", ".join(f"{k} {n}" for k, n in counts.items() if k.isdigit())
        parts.append(f"{target} {classes}" + (f" ({codes})" if codes else ""))
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Record:
    """One request read from a log (README "Request logs"), with where it came from.

    `body` holds the JSON value when the record had one; `body_bytes` is what goes on the wire.
    `has_json_body` (from `body_form`) tells a JSON `null` body apart from no body at all.
    """

    method: str
    path: str
    headers: Headers = ()
    body: Any = None
    body_bytes: bytes | None = None
    body_form: str = ""  # "", "json", "text" or "b64": how the record wrote its body
    name: str | None = None
    id: str | None = None
    ts: float | None = None
    lane: str | None = None
    auth: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int = 0
    expect_status: int | None = None  # the status this request is meant to answer
    # The primary's answer as the capture recorded it (`shadow run --recorded` compares with it).
    response: Response | None = None
    # Why the recorded answer cannot be used ("" when there is one, or none was recorded):
    # an input error under `--recorded` only, as a run against a primary never reads it.
    response_problem: str = ""

    @property
    def has_json_body(self) -> bool:
        return self.body_form == "json"

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def json_body_text(self) -> Any:
        """The JSON body as the bytes sent (an orjson Fragment: written as they are, so a
        number or spacing the value would change shows as it was recorded), else the value.
        A raw CR or LF in valid JSON can only be spacing: made a space, to keep one line."""
        if self.body_bytes is None:
            return self.body
        return orjson.Fragment(self.body_bytes.replace(b"\r", b" ").replace(b"\n", b" "))

    def to_dict(
        self, redact: frozenset[str] = frozenset(), keep_response: bool = False
    ) -> dict[str, Any]:
        """The record in native form (a valid log line); headers named in `redact` masked;
        the recorded answer as `response` when `keep_response` is set."""
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.headers:
            out["headers"] = [[k, REDACTED if k.lower() in redact else v] for k, v in self.headers]
        if self.body_form == "json":
            out["body"] = self.json_body_text()
        elif self.body_form == "text" and self.body_bytes is not None:
            out["body_text"] = self.body_bytes.decode("utf-8", "replace")
        elif self.body_form == "b64" and self.body_bytes is not None:
            out["body_b64"] = base64.b64encode(self.body_bytes).decode("ascii")
        for key in ("name", "id", "ts", "lane", "auth", "expect_status"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.vars:
            out["vars"] = dict(self.vars)
        if keep_response and self.response is not None:
            out["response"] = self.response.to_dict(redact)
        return out


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A record that could not be read, with where: the file and the line (1-based; 0 when the
    format has no useful line, as in HAR, whose messages name the entry instead). Messages of
    binary formats start with the byte offset."""

    source: str
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class UnreadableInput(InputProblem):
    """A whole input that could not be read (no known format, not gzip, an I/O error): one
    problem for the run, and exit 2 for `shadow convert`."""


Item = Record | InputProblem


# No member at a JSON Pointer (None would be JSON null).
ABSENT: Any = object()


def member_at(value: Any, pointer: str) -> Any:
    """The member of parsed JSON `value` at RFC 6901 `pointer` ("" is the whole), else ABSENT."""
    for raw in pointer.split("/")[1:]:
        segment = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return ABSENT
    return value


def json_body_bytes(value: Any) -> bytes:
    """The bytes sent for a JSON body."""
    return orjson.dumps(value)


@dataclass(frozen=True, slots=True)
class Response:
    """What one target answered to one record."""

    status: int
    headers: Headers
    body: bytes
    latency_ms: float

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def to_dict(self, redact: frozenset[str] = frozenset()) -> dict[str, Any]:
        """A recorded answer in native form (a record's `response`): status, its latency
        when timed, headers, and the body as a request's: `body` (JSON), `body_text` (UTF-8)
        or `body_b64`."""
        out: dict[str, Any] = {"status": self.status}
        if self.latency_ms > 0:
            out["latency_ms"] = self.latency_ms
        if self.headers:
            out["headers"] = [[k, REDACTED if k.lower() in redact else v] for k, v in self.headers]
        if not self.body:
            return out
        media = (self.header("content-type") or "").partition(";")[0].strip().lower()
        if media == "application/json" or media.endswith("+json"):
            try:
                out["body"] = orjson.loads(self.body)
                return out
            except orjson.JSONDecodeError:
                pass
        try:
            out["body_text"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            out["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return out


@dataclass(frozen=True, slots=True)
class Failure:
    """A request that got no usable response: `kind` is short (timeout, refused, reset, ...)."""

    kind: str
    message: str
    latency_ms: float = 0.0


Outcome = Response | Failure


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference between the primary's and the candidate's answer.

    `path` is an RFC 6901 pointer into the body, `header:<name>` or `status`; `kind` is one of
    status, header, type, value, missing, extra, body.
    """

    path: str
    kind: str
    primary: Any = None
    candidate: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "primary": self.primary,
            "candidate": self.candidate,
        }


@dataclass(frozen=True, slots=True)
class CompareRules:
    """How one endpoint's responses are compared (`[compare]`, README "Configuration").

    Pointer patterns use `*` for one segment and `**` for any number of segments.
    `normalize` maps a pattern to a normalizer (one of NORMALIZERS); `unordered_keys` maps a
    pattern to the member that pairs up the objects of an unordered array. `headers` names
    headers to compare (`*`: all but the volatile ones; `ignore_headers` never), None when
    a table does not set it (an endpoint's list replaces the global one; `()` compares none).
    Numbers are equal within `tolerance` (absolute) or `relative_tolerance` (of the larger
    magnitude). `expect_status` is the status an endpoint's records are meant to answer (a
    deliberate error path, not a failure on both sides).
    """

    ignore: tuple[str, ...] = ()
    unordered: tuple[str, ...] = ()
    normalize: tuple[tuple[str, str], ...] = ()
    headers: tuple[str, ...] | None = None
    compare_status: bool = True
    tolerance: float = 0.0
    unordered_keys: tuple[tuple[str, str], ...] = ()
    ignore_headers: tuple[str, ...] = ()
    relative_tolerance: float = 0.0
    ignore_whitespace: bool = True  # XML and HTML: whitespace-only text (indentation) is skipped
    expect_status: int | None = None

    def __post_init__(self) -> None:
        for pattern, kind in self.normalize:
            if kind not in NORMALIZERS:
                raise InvalidValue(
                    f"normalize.{pattern}",
                    f"unknown normalizer {kind!r} (use one of {', '.join(NORMALIZERS)})",
                )
        keyed = tuple(pattern for pattern, _ in self.unordered_keys)
        for name, patterns in (
            ("ignore", self.ignore),
            ("unordered", self.unordered + keyed),
            ("normalize", tuple(pattern for pattern, _ in self.normalize)),
        ):
            for pattern in patterns:
                # `line:N` names a line of a text body (README "Bodies that are not JSON").
                text_line = name != "unordered" and LINE_PATTERN.fullmatch(pattern)
                if not pattern.startswith("/") and not text_line:
                    raise InvalidValue(
                        name,
                        f"pattern {pattern!r} must start with '/' (or be a text line: line:12,"
                        " line:3-5, line:*)",
                    )
        check_at_least("tolerance", self.tolerance, 0)
        check_at_least("relative_tolerance", self.relative_tolerance, 0)
        if self.expect_status is not None and not 100 <= self.expect_status <= 599:
            raise InvalidValue(
                "expect_status", f"must be an HTTP status (100 to 599), not {self.expect_status}"
            )


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A request about to go to one target, as a hooks module's `prepare_request` sees it
    (shadow.run.hooks, README "Hooks"); it returns another (`dataclasses.replace`) to send.

    `url` is the target's base url, `path` the request-target sent (path and query, encoded
    as recorded), `headers` what goes out but `Content-Length` (and `Host`, unless recorded
    with `host_header = "preserve"`), `body` the bytes sent (b"" for none); `name` and `vars`
    are the record's."""

    method: str
    url: str
    path: str
    headers: Headers
    body: bytes
    name: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def with_header(self, name: str, value: str) -> HookRequest:
        """This request with header `name` set to `value` (any of that name replaced)."""
        wanted = name.lower()
        kept = tuple((k, v) for k, v in self.headers if k.lower() != wanted)
        return HookRequest(
            self.method,
            self.url,
            self.path,
            (*kept, (name, value)),
            self.body,
            self.name,
            self.vars,
        )


@dataclass(slots=True)
class Exchange:
    """One record sent to every target, with what each answered and how the answers differ."""

    seq: int
    record: Record
    endpoint: str
    rules: CompareRules
    outcomes: dict[str, Outcome]
    diffs: list[Difference] = field(default_factory=list)
    noise: list[Difference] = field(default_factory=list)  # differences suppressed as noise
    # Found past `[replay] max_differences`: not kept, never judged noise, always a mismatch.
    diffs_left_out: int = 0

    def failed_sides(self) -> list[str]:
        # Only the two compared sides count: a calibration answer that fails costs a noise
        # sample, not the exchange.
        return [
            side
            for side, outcome in self.outcomes.items()
            if side in SIDES and isinstance(outcome, Failure)
        ]


@dataclass(frozen=True, slots=True)
class Usage:
    """Resources of one process group (or of shadow itself)."""

    pid: int | None
    processes: int
    rss_bytes: int
    cpu_percent: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One `progress` event's numbers."""

    elapsed_s: float
    sent: int
    counts: Mapping[str, int]  # requests, matched, mismatched, errors, warmup
    rate: float  # records sent per second over the interval
    target_rate: float | None
    backlog: int | None
    lag_s: float
    in_flight: int
    latency_ms: Mapping[str, Mapping[str, float]]  # per target, over the interval
    servers: Mapping[str, Usage]
    shadow: Usage
    statuses: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # per target


@dataclass(frozen=True, slots=True)
class Behind:
    """The dispatcher is later than `behind_warning_s` on its schedule."""

    lag_s: float
    backlog: int | None
    target_rate: float | None
    in_flight: int
