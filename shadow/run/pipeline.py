"""One record's trip through a run, before and after the replayer sends it.

Before (`prepare`): the route decides the endpoint, its compare rules and auth profile; the
calibrator may ask for a reference answer; the auth profile mints credentials; the correlator
gives each target the lane's values it answered (shadow.replay.correlate); a target down
while it restarts is not sent to. After (`finish`): the correlator learns from the answers
(and adds to the exchange's rules the differences it expects), the two answers are compared,
a hung target is noticed, noise is judged, the tally counts the exchange and the sink writes its
event. A record admitted but never finished (the run was cut short) is reported by
`unfinished`, so every record is accounted for exactly once.

Everything here is plain calls on values: a test builds a Pipeline over a config and a sink,
hands its `prepare` and `finish` to a Replayer against servers on 127.0.0.1, and reads the
events, with no subprocess and no signal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from shadow.compare.diff import diff_responses
from shadow.compare.noise import calibrator
from shadow.config.load import Config
from shadow.events.redact import ALWAYS_REDACTED, Redactor
from shadow.events.sink import Sink
from shadow.model import Exchange, Failure, Outcome, Record, Response
from shadow.replay.auth import Authenticator, AuthError
from shadow.replay.correlate import Correlated, Correlator
from shadow.replay.pool import Prepared, internal_failure
from shadow.replay.routes import Router
from shadow.run.hooks import Hooks
from shadow.run.progress import TimeoutStreaks
from shadow.run.tally import Tally
from shadow.stdio import Console

_INTERNAL_WARNINGS = 3  # internal errors said on stderr; the rest only as events


class ServerState(Protocol):
    """What the pipeline asks of the servers (the Supervisor, once they are up)."""

    @property
    def down(self) -> Mapping[str, float]:
        """Targets down while they restart, not to be sent to."""
        ...

    def warming(self) -> bool:
        """Whether a target is within its `warmup_s` after it became ready."""
        ...


class Pipeline:
    """`prepare` and `finish` for a Replayer, and `unfinished` for what it never finished."""

    def __init__(
        self,
        config: Config,
        sink: Sink,
        tally: Tally,
        console: Console,
        *,
        emit: str = "mismatches",
        learning: bool = False,
        recorded: bool = False,
        hooks: Hooks | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.tally = tally
        self.console = console
        self.emit = emit
        self.auth = Authenticator(config, on_mint=self._minted if console.verbosity > 0 else None)
        sink.scrubber.add(self.auth.secret_values())
        self.router = Router(config)
        self.redact = Redactor(
            ALWAYS_REDACTED | self.auth.header_names | set(config.redact.headers),
            config.redact.paths,
        )
        self.streaks = TimeoutStreaks(config.replay.unresponsive_after)
        self.recorded = recorded  # the primary's answer is the record's, never asked for
        self.hooks = hooks if hooks is not None and hooks.normalize_body is not None else None
        self.noise = calibrator(config.noise, "secondary" in config.targets, learning)
        self.servers: ServerState | None = None  # set once the servers are up
        self.warm: set[int] = set()  # seqs sent while a target warmed up, not yet finished
        self.internal_errors = 0  # records a bug in shadow made errors
        correlate = config.replay.correlate
        self.correlator = Correlator(correlate, config.replay.lane) if correlate.active else None

    def note_dispatch(self, seq: int) -> None:
        """Intake is about to hand record `seq` over: remember it if a target is warming up."""
        if self.servers is not None and self.servers.warming():
            self.warm.add(seq)

    def prepare(self, record: Record) -> Prepared:
        """What the replayer needs to send `record`: endpoint, rules, credentials, reference."""
        prepared = self._route(record)
        if self.servers is None or not self.servers.down:
            return prepared
        failure = Failure("server_down", "not sent: the target is restarting after it exited")
        return dataclasses.replace(prepared, down=dict.fromkeys(self.servers.down, failure))

    def _route(self, record: Record) -> Prepared:
        route = self.router.route(record)
        reference = None
        if self.noise is not None:
            self.noise.note_route(route.endpoint, route.method, route.template, route.match)
            reference = self.noise.reference_for(record, route.endpoint, route.safe)
        try:
            credentials = self.auth.credentials(record, record.auth or route.auth)
        except AuthError as exc:
            return Prepared(route.endpoint, route.rules, (), Failure("auth", str(exc)))
        recorded = record.response if self.recorded else None
        rewrite = self.correlator.prepare(record) if self.correlator is not None else {}
        return Prepared(
            route.endpoint,
            route.rules,
            credentials.headers,
            drop=credentials.drop,
            reference=reference,
            given={"primary": recorded} if recorded is not None else {},
            rewrite=rewrite,
        )

    def finish(self, exchange: Exchange) -> None:
        """Compare, judge noise, count, and write the exchange's event (if it has one).

        A bug while the exchange is judged (before it is counted) makes it an `internal`
        error, counted and written like any other; one past that is raised (shadow.run)."""
        correlated = None
        try:
            if self.correlator is not None:
                correlated = self.correlator.learn(exchange)
                self._correlation_events(exchange, correlated)
            if self._judge(exchange):
                return
            differs = exchange.failed_sides() or exchange.diffs or exchange.diffs_left_out
            auth = self.auth_header(exchange.record) if differs else None
        except Exception as exc:  # noqa: BLE001 - a bug in judging one exchange is its error
            failure = internal_failure(exc)
            outcomes: dict[str, Outcome] = dict.fromkeys(exchange.outcomes, failure)
            exchange = Exchange(
                exchange.seq, exchange.record, exchange.endpoint, exchange.rules, outcomes
            )
            self.warm.discard(exchange.seq)
            auth = None
        outcome = self.tally.add(exchange)
        self._say_if_internal(exchange)
        if self.console.verbosity > 0:
            self.console.debug(self._exchange_line(exchange, outcome))
        if outcome != "match" or self.emit == "all":
            show_noise = self.emit == "all"
            rewrites = correlated.rewrites if correlated is not None else []
            self.sink.exchange(exchange, outcome, self.redact, show_noise, auth, rewrites)

    def _correlation_events(self, exchange: Exchange, correlated: Correlated | None) -> None:
        """A `{NAME}` no answer of the lane gave, and a value two answers mapped apart."""
        if correlated is None:
            return
        for name, place in correlated.missing:
            self.sink.correlation_missing(exchange, correlated.lane, name, place, self.redact)
        for conflict in correlated.conflicts:
            self.sink.correlation_conflict(exchange, correlated.lane, conflict, self.redact)

    def _say_if_internal(self, exchange: Exchange) -> None:
        """A bug met while a record was handled: said on stderr too, for the first few."""
        failures = [o for o in exchange.outcomes.values() if isinstance(o, Failure)]
        if not any(f.kind == "internal" for f in failures):
            return
        self.internal_errors += 1
        if self.internal_errors <= _INTERNAL_WARNINGS:
            message = next(f.message for f in failures if f.kind == "internal")
            self.console.error(f"record {exchange.seq}: {message} (an `internal` error event)")
        elif self.internal_errors == _INTERNAL_WARNINGS + 1:
            self.console.error("more internal errors: see the `error` events")

    def _judge(self, exchange: Exchange) -> bool:
        """Compare and judge noise; True for a warm-up exchange (counted apart, no event).
        Nothing is counted here, so a bug raised from here can still count the exchange."""
        if self.hooks is not None:
            self.hooks.normalize(exchange)  # the bodies as the hooks module says to compare them
        primary = exchange.outcomes.get("primary")
        candidate = exchange.outcomes.get("candidate")
        if isinstance(primary, Response) and isinstance(candidate, Response):
            found = diff_responses(
                primary, candidate, exchange.rules, self.config.replay.max_differences
            )
            exchange.diffs, exchange.diffs_left_out = found, found.left_out
        if self._observe(exchange):
            return True
        if self.noise is not None:
            self.noise.judge(exchange)
        return False

    def _observe(self, exchange: Exchange) -> bool:
        """Watch for a hung target; True for a warm-up exchange (counted apart, no event)."""
        for target, timeouts in self.streaks.observe(exchange):
            self.sink.server_unresponsive(target, timeouts, self.config.replay.timeout_s)
            self.console.warning(f"{target}: {timeouts} requests in a row timed out")
        if exchange.seq in self.warm:
            self.warm.discard(exchange.seq)
            self.tally.add_warmup(exchange)
            return True
        return False

    def _minted(self, profile: str, claims: Mapping[str, Any]) -> None:
        names = ", ".join(sorted(claims)) or "none"
        self.console.debug(f"auth {profile}: minted a token (claims: {names})")

    def _exchange_line(self, exchange: Exchange, outcome: str) -> str:
        """`-v`: one line per exchange (its request as events show it, after redaction)."""
        request = self.redact.request(exchange.record)
        sides = ", ".join(
            f"{side} {o.status if isinstance(o, Response) else o.kind} {o.latency_ms:.1f} ms"
            for side, o in exchange.outcomes.items()
        )
        where = f"{request.get('method')} {request.get('path')}"
        return f"seq {exchange.seq} {exchange.endpoint}: {where}: {outcome} ({sides})"

    def auth_header(self, record: Record) -> str | None:
        """The header an auth profile adds to `record`: a placeholder in its `curl`."""
        profile = self.config.auth.get(record.auth or self.router.route(record).auth or "")
        return profile.header if profile is not None else None

    def unfinished(self, pending: Mapping[int, Record], reason: str, side: str) -> None:
        """Records admitted and never finished: each an `error` (`cancelled`), counted."""
        for seq, record in sorted(pending.items()):
            self.warm.discard(seq)
            endpoint = self.router.route(record).endpoint
            self.tally.add_unfinished(endpoint)
            request, auth = self.redact.request(record), self.auth_header(record)
            self.sink.unfinished(seq, request, endpoint, reason, auth, side)
