"""One record's trip through a run, before and after the replayer sends it.

Before (`prepare`): the route decides the endpoint, its compare rules and auth profile; the
calibrator may ask for a reference answer; the auth profile mints credentials; a target down
while it restarts is not sent to. After (`finish`): the two answers are compared, a hung
target is noticed, noise is judged, the tally counts the exchange and the sink writes its
event. A record admitted but never finished (the run was cut short) is reported by
`unfinished`, so every record is accounted for exactly once.

Everything here is plain calls on values: a test builds a Pipeline over a config and a sink,
hands its `prepare` and `finish` to a Replayer against servers on 127.0.0.1, and reads the
events, with no subprocess and no signal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from shadow.compare.diff import diff_responses
from shadow.compare.noise import calibrator
from shadow.config.load import Config
from shadow.events.redact import ALWAYS_REDACTED, Redactor
from shadow.events.sink import Sink
from shadow.model import Exchange, Failure, Record, Response
from shadow.replay.auth import Authenticator, AuthError
from shadow.replay.pool import Prepared
from shadow.replay.routes import Router
from shadow.run.progress import TimeoutStreaks
from shadow.run.tally import Tally
from shadow.stdio import Console


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
    ) -> None:
        self.config = config
        self.sink = sink
        self.tally = tally
        self.console = console
        self.emit = emit
        self.auth = Authenticator(config)
        sink.scrubber.add(self.auth.secret_values())
        self.router = Router(config)
        self.redact = Redactor(
            ALWAYS_REDACTED | self.auth.header_names | set(config.redact.headers),
            config.redact.paths,
        )
        self.streaks = TimeoutStreaks(config.replay.unresponsive_after)
        self.noise = calibrator(config.noise, "secondary" in config.targets, learning)
        self.servers: ServerState | None = None  # set once the servers are up
        self.warm: set[int] = set()  # seqs sent while a target warmed up, not yet finished

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
            self.noise.note_route(route.endpoint, route.method, route.template)
            reference = self.noise.reference_for(record)
        try:
            credentials = self.auth.credentials(record, record.auth or route.auth)
        except AuthError as exc:
            return Prepared(route.endpoint, route.rules, (), Failure("auth", str(exc)))
        return Prepared(
            route.endpoint,
            route.rules,
            credentials.headers,
            drop=credentials.drop,
            reference=reference,
        )

    def finish(self, exchange: Exchange) -> None:
        """Compare, judge noise, count, and write the exchange's event (if it has one)."""
        primary = exchange.outcomes.get("primary")
        candidate = exchange.outcomes.get("candidate")
        if isinstance(primary, Response) and isinstance(candidate, Response):
            exchange.diffs = diff_responses(primary, candidate, exchange.rules)
        if self._observe(exchange):
            return
        if self.noise is not None:
            self.noise.judge(exchange)
        outcome = self.tally.add(exchange)
        if outcome != "match" or self.emit == "all":
            show_noise = self.emit == "all"
            auth = self.auth_header(exchange.record) if outcome != "match" else None
            self.sink.exchange(exchange, outcome, self.redact, show_noise, auth)

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
