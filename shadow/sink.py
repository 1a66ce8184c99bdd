"""Where events go: one JSON object per line on stdout (or a file), built only here.

structlog is configured with orjson's renderer and a bytes logger, so an event is rendered
straight to bytes and written with one call. Every line starts with `event`, `ts` (UTC,
milliseconds, `Z`) and `run_id`, in that order, which keeps `head` and `grep` output readable.
A reader that goes away (`shadow run | head -1`) is not an error: the sink notes it, stops
writing, points fd 1 at /dev/null so the interpreter's final flush stays quiet, and tells the
app through `on_closed`, which ends the run as if interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog

from shadow.model import Exchange, Failure, Response

SCHEMA_VERSION = 1

_FLOAT_DIGITS = 3


def utc_now() -> str:
    """The `ts` of an event: ISO-8601 UTC with milliseconds and `Z`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _order_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    event = event_dict.pop("event")
    run_id = event_dict.pop("run_id")
    return {"event": event, "ts": utc_now(), "run_id": run_id, **event_dict}


_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_MAX_DEPTH = 200


def _render(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(event_dict, option=_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        # A server answered something JSON can carry but orjson cannot write back (an
        # integer beyond 64 bits, a lone surrogate, nesting past orjson's limit): write a
        # faithful text form of those values rather than lose the event.
        return orjson.dumps(_sanitize(dict(event_dict), 0), option=_OPTIONS)


def _sanitize(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "[nested too deep to show]"
    if isinstance(value, dict):
        return {str(k): _sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


class _Writer:
    """The bytes 'logger' structlog writes through: one write per event, flushed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def msg(self, line: bytes) -> None:
        self.stream.write(line)
        self.stream.flush()

    info = msg


class Sink:
    """Writes events; `emit` is the only way an event leaves the process."""

    def __init__(
        self,
        run_id: str,
        stream: IO[bytes] | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._on_closed = on_closed
        self.closed = False
        self.counts: dict[str, int] = {}
        self._log = structlog.wrap_logger(
            _Writer(self._stream),
            processors=[_order_fields, _render],
            cache_logger_on_first_use=True,
        ).bind(run_id=run_id)

    def emit(self, event: str, **fields: Any) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        if self.closed:
            return
        try:
            self._log.info(event, **fields)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.EBADF):
                self._reader_gone()
            else:
                raise

    def _reader_gone(self) -> None:
        self.closed = True
        if self._stream is sys.stdout.buffer:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if self._on_closed is not None:
            self._on_closed()

    # The supervisor reports through these (its ServerEvents protocol).
    def server_ready(self, target: str, url: str, pid: int | None, startup_ms: float) -> None:
        self.emit("server_ready", target=target, url=url, pid=pid, startup_ms=round(startup_ms, 1))

    def server_exited(
        self, target: str, returncode: int | None, expected: bool, log_tail: list[str]
    ) -> None:
        self.emit(
            "server_exited",
            target=target,
            returncode=returncode,
            expected=expected,
            log_tail=log_tail,
        )

    def exchange(self, exchange: Exchange, outcome: str, redact: frozenset[str]) -> None:
        """A `mismatch`, `match` or `error` event for a finished exchange."""
        record = exchange.record
        fields: dict[str, Any] = {
            "seq": exchange.seq,
            "id": record.id,
            "endpoint": exchange.endpoint,
            "request": record.to_dict(redact),
        }
        fields["status"] = {
            side: o.status if isinstance(o, Response) else None
            for side, o in exchange.outcomes.items()
        }
        fields["latency_ms"] = {
            side: round_ms(o.latency_ms) for side, o in exchange.outcomes.items()
        }
        if outcome == "error":
            failed = exchange.failed_sides()
            first = exchange.outcomes[failed[0]]
            assert isinstance(first, Failure)
            fields["side"] = failed[0] if len(failed) == 1 else "both"
            fields["error"] = first.kind
            fields["message"] = "; ".join(
                f"{side}: {o.message}"
                for side, o in exchange.outcomes.items()
                if isinstance(o, Failure)
            )
            self.emit("error", **fields)
        elif outcome == "mismatch":
            fields["diffs"] = [d.to_dict() for d in exchange.diffs]
            self.emit("mismatch", **fields)
        else:
            self.emit("match", **fields)

    def unfinished(self, seq: int, request: dict[str, Any], endpoint: str, reason: str) -> None:
        """An `error` for a record admitted but never finished: the run was cut short."""
        self.emit(
            "error",
            seq=seq,
            id=request.get("id"),
            endpoint=endpoint,
            request=request,
            status={},
            latency_ms={},
            side="both",
            error="cancelled",
            message=reason,
        )

    def input_error(self, source: str, line: int, message: str) -> None:
        self.emit("input_error", source=source, line=line, message=message)


def round_ms(value: float) -> float:
    return round(value, _FLOAT_DIGITS)


class Console:
    """Human-readable lines on stderr; `-q` keeps only errors, `-v` adds detail."""

    def __init__(self, verbosity: int = 0, stream: IO[str] | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream if stream is not None else sys.stderr

    def _say(self, level: str, message: str) -> None:
        # stderr gone too: nothing left to tell
        with contextlib.suppress(OSError, ValueError):
            print(f"shadow: {level}{message}", file=self.stream, flush=True)

    def error(self, message: str) -> None:
        self._say("error: ", message)

    def warning(self, message: str) -> None:
        if self.verbosity >= 0:
            self._say("warning: ", message)

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            self._say("", message)

    def debug(self, message: str) -> None:
        if self.verbosity > 0:
            self._say("", message)
