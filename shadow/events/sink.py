"""Where events go: one JSON object per line on stdout (or a file), built only here.

structlog is configured with orjson's renderer and a bytes logger, so an event is rendered
straight to bytes and written with one call. Every line starts with `event`, `ts` (UTC,
milliseconds, `Z`) and `run_id`, in that order, which keeps `head` and `grep` output readable.
A reader that goes away (`shadow run | head -1`) is not an error: the sink notes it, stops
writing, points fd 1 at /dev/null so the interpreter's final flush stays quiet, and tells the
run through `on_closed`, which ends it as if interrupted. Any other write failure (a full
disk) ends the run the same way, and is kept in `write_error` for the run to report. Every
line, whatever event it is and wherever its strings came from (a server's log tail, an
answer's body), goes through the run's scrubber on its way out (shadow.events.scrub).
"""

from __future__ import annotations

import errno
import json
import math
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog
from structlog.typing import Processor

from shadow.events.curl import curl_command
from shadow.events.fit import fit_event, mark
from shadow.events.redact import Redactor
from shadow.events.scrub import Scrubber, credential_values
from shadow.model import REDACTED, Behind, Exchange, Failure, Response, Sample, Usage
from shadow.stdio import point_at_devnull

SCHEMA_VERSION = 1
_HEAD_BYTES = 256

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


_UNWATCHED = (b'{"event":"match"', b'{"event":"progress"')


class _Writer:
    """The bytes 'logger' structlog writes through: one write per event, masked, flushed."""

    def __init__(self, stream: IO[bytes], scrubber: Scrubber) -> None:
        self.stream = stream
        self.scrubber = scrubber
        self.extra: list[str] = []  # the secrets of the event being written (a record's)
        self.masked: bytes | None = None

    def msg(self, line: bytes) -> None:
        written = self.scrubber.line(line, self.extra)
        self.masked = written if written is not line else None  # the last line, if masked
        self.stream.write(written)
        self.stream.flush()

    info = msg


class Sink:
    """Writes events; `emit` is the only way an event leaves the process.

    `processors` replaces the chain that orders and renders an event (`None`: the real one),
    so a test can capture the events as dicts: `Sink("r", processors=[LogCapture()])`.
    """

    def __init__(
        self,
        run_id: str,
        stream: IO[bytes] | None = None,
        on_closed: Callable[[], None] | None = None,
        *,
        processors: Sequence[Processor] | None = None,
        max_event_bytes: int = 1 << 20,
        watcher: Callable[[str, Mapping[str, Any]], None] | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.run_id = run_id
        self.watcher = watcher  # sees each event written (the terminal view), after redaction
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        # Room kept for `event`, `ts` and `run_id`, which are added when the line is rendered.
        self._fit_bytes = max_event_bytes - _HEAD_BYTES
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._on_closed = on_closed
        self.closed = False
        self.write_error: OSError | None = None  # why events could not be written, if so
        self.counts: dict[str, int] = {}
        self._writer = _Writer(self._stream, self.scrubber)
        self._log = structlog.wrap_logger(
            self._writer,
            processors=[_order_fields, _render] if processors is None else list(processors),
            cache_logger_on_first_use=True,
        ).bind(run_id=run_id)

    def emit(self, event: str, **fields: Any) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        if self.closed:
            return
        try:
            self._log.info(event, **fields)
        except OSError as exc:
            # A reader that went away is how `| head` ends; any other failure (a full disk,
            # an I/O error) loses events: the run reports it and fails.
            if not (isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.EBADF)):
                self.write_error = exc
            self._reader_gone()
            return
        if self.watcher is not None:
            # The watcher shows the fields, not the line: the line's secrets masked there too.
            masked = self._writer.masked
            self.watcher(event, json.loads(masked) if masked is not None else fields)

    def forward(self, lines: bytes) -> None:
        """Write events another shadow process already rendered (a `--workers` child's),
        as they are: whole lines, one write."""
        if self.closed or not lines:
            return
        lines = self.scrubber.lines(lines)
        try:
            self._stream.write(lines)
            self._stream.flush()
        except OSError as exc:
            if not (isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.EBADF)):
                self.write_error = exc
            self._reader_gone()
            return
        if self.watcher is not None:
            for line in lines.splitlines():
                if not line.startswith(_UNWATCHED):  # the bulk of a long run: not parsed
                    event = orjson.loads(line)
                    self.watcher(str(event.get("event")), event)

    def _reader_gone(self) -> None:
        self.closed = True
        if self._stream is sys.stdout.buffer:
            point_at_devnull(sys.stdout.fileno())
        if self._on_closed is not None:
            self._on_closed()

    def run_started(
        self,
        targets: Mapping[str, tuple[str, bool]],
        sources: list[str],
        settings: Mapping[str, Any],
        pid: int,
        transport: Mapping[str, str],
    ) -> None:
        """The first event: the schema version, each target's url and whether it is managed
        (`targets` maps a name to `(url, managed)`), what is read, the settings, and the HTTP
        transport chosen (`name`, `requested`, `reason`)."""
        self.emit(
            "run_started",
            schema=SCHEMA_VERSION,
            targets={
                name: {"url": url, "managed": managed} for name, (url, managed) in targets.items()
            },
            sources=sources,
            settings=dict(settings),
            pid=pid,
            transport=dict(transport),
        )

    def run_finished(
        self,
        summary: Mapping[str, Any],
        *,
        duration_s: float,
        cpu_s: float,
        pacing: Mapping[str, Any],
        restarts: Mapping[str, Any],
        calibration: Mapping[str, Any] | None,
        interrupted: bool,
        exit_code: int,
        reasons: Sequence[str] = (),
        recorded: bool = False,
        **extra: Any,
    ) -> None:
        """The last event: the run's counts (`summary`, from the tally), how it went (`cpu_s`:
        the CPU seconds of shadow's processes), its exit code and why (`reasons`: each
        threshold the run failed, as stderr said it);
        `recorded`: compared with a capture's answers (`--recorded`); `extra` carries what a
        sharded or multi-worker run adds."""
        self.emit(
            "run_finished",
            **summary,
            duration_s=round(duration_s, 3),
            cpu_s=round(cpu_s, 3),
            pacing=pacing,
            restarts=restarts,
            calibration=calibration,
            interrupted=interrupted,
            exit_code=exit_code,
            reasons=list(reasons),
            recorded=recorded,
            **extra,
        )

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

    def exchange(
        self,
        exchange: Exchange,
        outcome: str,
        redact: frozenset[str] | Redactor,
        show_noise: bool = False,
        auth_header: str | None = None,
        rewrites: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """A `mismatch`, `match` or `error` event for a finished exchange.

        Mismatches and errors carry a `curl` command; with `show_noise` (`--emit all`) the
        differences suppressed as noise are listed too, each marked `"suppressed": "noise"`.
        `rewrites`: the correlated values sent to each target in place of the recorded ones.
        """
        redactor = redact if isinstance(redact, Redactor) else Redactor(redact)
        request = redactor.request(exchange.record)
        # The record's own credentials: a server that echoes them must not show them.
        self._writer.extra = [
            part
            for name, value in exchange.record.headers
            if name.lower() in redactor.headers
            for part in credential_values(value)
        ]
        shown = [redactor.rewrite(dict(change)) for change in rewrites]
        try:
            self._exchange(exchange, outcome, redactor, request, show_noise, auth_header, shown)
        finally:
            self._writer.extra = []

    def _exchange(
        self,
        exchange: Exchange,
        outcome: str,
        redactor: Redactor,
        request: dict[str, Any],
        show_noise: bool,
        auth_header: str | None,
        rewrites: list[dict[str, Any]],
    ) -> None:
        fields = _exchange_fields(exchange, request)
        if rewrites:
            fields["rewrites"] = rewrites
        if outcome == "error":
            fields.update(_failure_fields(exchange), curl=curl_command(request, auth_header))
            self.emit("error", **fit_event(fields, self._fit_bytes))
            return
        noise = [{**redactor.diff(d), "suppressed": "noise"} for d in exchange.noise]
        noise = noise if show_noise else []
        if outcome == "mismatch":
            diffs = [redactor.diff(d) for d in exchange.diffs] + noise
            fields.update(diffs=diffs, curl=curl_command(request, auth_header))
            if exchange.diffs_left_out:
                fields["diffs_total"] = len(exchange.diffs) + exchange.diffs_left_out
                mark(fields, "diffs")
            self.emit("mismatch", **fit_event(fields, self._fit_bytes))
        elif noise:
            self.emit(
                "match",
                **fit_event({**fields, "suppressed": "noise", "diffs": noise}, self._fit_bytes),
            )
        else:
            self.emit("match", **fit_event(fields, self._fit_bytes))

    def unfinished(
        self,
        seq: int,
        request: dict[str, Any],
        endpoint: str,
        reason: str,
        auth_header: str | None = None,
        side: str = "both",
    ) -> None:
        """An `error` for a record admitted but never finished: the run was cut short
        (`side`: the target whose death cut it short, else `both`)."""
        fields = {
            "seq": seq,
            "id": request.get("id"),
            "endpoint": endpoint,
            "request": request,
            "status": {},
            "latency_ms": {},
            "side": side,
            "error": "cancelled",
            "message": reason,
            "curl": curl_command(request, auth_header),
        }
        self.emit("error", **fit_event(fields, self._fit_bytes))

    def correlation_missing(
        self, exchange: Exchange, lane: str, name: str, place: str, redact: Redactor
    ) -> None:
        """A request of the lane names `{name}`, which no answer of the lane gave yet: it
        went out with the placeholder as written."""
        self.emit(
            "correlation_missing",
            seq=exchange.seq,
            endpoint=exchange.endpoint,
            lane=lane,
            name=name,
            place=place,
            message=f"{{{name}}} in {place}: no answer of lane {lane!r} gave it before",
            request=redact.request(exchange.record),
        )

    def correlation_conflict(
        self, exchange: Exchange, lane: str, conflict: Mapping[str, Any], redact: Redactor
    ) -> None:
        """An answer mapped a recorded value the lane already mapped to other values; the
        newer mapping is used from here on."""
        where = redact.rewrite({"place": conflict["place"], "recorded": None, "sent": {}})
        hidden = where.get("recorded") is not None
        self.emit(
            "correlation_conflict",
            seq=exchange.seq,
            endpoint=exchange.endpoint,
            lane=lane,
            name=conflict["name"],
            place=conflict["place"],
            recorded=REDACTED if hidden else conflict["recorded"],
            before=dict.fromkeys(conflict["before"], REDACTED) if hidden else conflict["before"],
            after=dict.fromkeys(conflict["after"], REDACTED) if hidden else conflict["after"],
        )

    def input_error(self, source: str, line: int, message: str) -> None:
        self.emit("input_error", source=source, line=line, message=message)

    def reset(self, target: str, kind: str, seconds: float, ok: bool) -> None:
        """A target's `[targets.NAME.reset]` ran (`kind`: command or http)."""
        self.emit("reset", target=target, kind=kind, seconds=round(seconds, 3), ok=ok)

    def progress(self, sample: Sample) -> None:
        self.emit(
            "progress",
            elapsed_s=round(sample.elapsed_s, 3),
            sent=sample.sent,
            **sample.counts,
            rate=round(sample.rate, 2),
            target_rate=_round_opt(sample.target_rate, 2),
            backlog=sample.backlog,
            lag_s=round(sample.lag_s, 3),
            in_flight=sample.in_flight,
            latency_ms=sample.latency_ms,
            servers={name: _usage(u) for name, u in sample.servers.items()},
            shadow=_usage(sample.shadow),
            statuses=sample.statuses,
        )

    def behind_schedule(self, behind: Behind, warning_s: float) -> None:
        self.emit(
            "behind_schedule",
            lag_s=round(behind.lag_s, 3),
            warning_s=warning_s,
            backlog=behind.backlog,
            target_rate=_round_opt(behind.target_rate, 2),
            in_flight=behind.in_flight,
        )

    def server_unresponsive(self, target: str, timeouts: int, timeout_s: float) -> None:
        self.emit("server_unresponsive", target=target, timeouts=timeouts, timeout_s=timeout_s)


def _exchange_fields(exchange: Exchange, request: dict[str, Any]) -> dict[str, Any]:
    """What every exchange event holds: which record, where it belongs, what each side said."""
    outcomes = exchange.outcomes
    return {
        "seq": exchange.seq,
        "id": exchange.record.id,
        "endpoint": exchange.endpoint,
        "request": request,
        "status": {s: o.status if isinstance(o, Response) else None for s, o in outcomes.items()},
        "latency_ms": {side: round_ms(o.latency_ms) for side, o in outcomes.items()},
    }


def _failure_fields(exchange: Exchange) -> dict[str, Any]:
    """An `error` event's `side`, `error` (the first failed side's kind) and `message`."""
    failed = exchange.failed_sides()
    first = exchange.outcomes[failed[0]]
    assert isinstance(first, Failure)
    message = "; ".join(
        f"{side}: {o.message}" for side, o in exchange.outcomes.items() if isinstance(o, Failure)
    )
    return {
        "side": failed[0] if len(failed) == 1 else "both",
        "error": first.kind,
        "message": message,
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "pid": usage.pid,
        "processes": usage.processes,
        "rss_mb": round(usage.rss_bytes / (1 << 20), 1),
        "cpu_percent": usage.cpu_percent,
    }


def _round_opt(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def round_ms(value: float) -> float:
    return round(value, _FLOAT_DIGITS)
