"""Calibration and suppression: what differs between two answers of the primary itself is noise.

Each calibrated exchange carries a reference answer: the secondary's (a second copy of the
primary, sent every record so its state follows the primary's) or, without a secondary, the
primary's own answer to the same record sent again (methods in `[noise] repeat_methods`, GET
and HEAD by default). The reference is asked after the primary has answered, so clock fields
have moved on. Counted per endpoint E and per diff path P (array indices generalized to `*`):

    pairs(E)     exchanges where the primary and the reference both answered
    noise(E, P)  of those, the ones where the two primary answers differ at P
    compared(E)  exchanges where the primary and the candidate both answered
    raw(E, P)    of those, the ones where the candidate differs from the primary at P

A candidate difference at P is suppressed as noise only when all of these hold:

1. pairs(E) >= `min_samples` (default 1);
2. noise rate = noise(E, P) / pairs(E) >= `min_rate` (default 0.05);
3. noise rate >= `ratio` x raw(E, P) / compared(E) (default 0.5): the primary disagrees with
   itself at P at least half as often as the candidate disagrees with it, a comparable rate;
4. the rule learned for P hides it. The rule follows the kinds of noise seen at P: a header
   gets `ignore_headers`; a value that changes gets a normalizer, the first of datetime,
   number, trim, case under which every noise difference at P was equal, else `volatile`
   (the JSON type and presence are still compared, so a type change or a missing field is
   still reported); a field that comes and goes gets `ignore`;
5. the rule would hide no more than a field: never the status, a type change, the whole JSON
   body, an object or an array (noise whose value is a container), or every element of an
   array (a pattern ending in `*`). Noise of such a kind marks P refused: reported on stderr
   and in the learned file, never suppressed. A body that is not JSON and differs between
   the two legacy answers is the exception: that endpoint's body is not comparable, and only
   a `body` difference is suppressed there (its status and headers are still compared).

A pair whose two legacy answers have different statuses teaches nothing (a repeated write
answered 200, then 400): it is discarded and counted. Calibration is adaptive: every safe
record of an endpoint is calibrated until it has `full_pairs` of them, then `sample` of them.

Live suppression and the learned file apply the same rule, so a run with the learned rules and
no calibration reports what the calibrated run reported.

Counts include the exchange being judged, so an endpoint's first exchange is judged on its own
calibration pair. Judging as exchanges finish keeps the output streaming, at a price: a path
that is noisy only rarely can hide a real change among the first exchanges of its endpoint
(`min_samples` demands more evidence first). `--learn-noise` writes the criteria applied to the
final counts as `[[compare.endpoint]]` blocks (shadow/compare/noise_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shadow.compare.diff import diff_responses
from shadow.compare.noise_rules import Finding, Route, render_rules
from shadow.compare.normalize import equal_under
from shadow.config.verdict import NoiseConfig
from shadow.model import (
    MAX_CALIBRATED_PATHS,
    MAX_ENDPOINTS,
    REPEAT,
    SAFE_METHODS,
    Criterion,
    Difference,
    Exchange,
    Record,
    Response,
    fold_indices,
)

MAX_ROUTES_PER_ENDPOINT = 8
# Tried in this order; the first under which every noise difference at a path is equal wins.
LEARNABLE_NORMALIZERS = ("datetime", "number", "trim", "case")


def calibrator(settings: NoiseConfig, secondary: bool, learning: bool) -> Calibrator | None:
    """The run's calibrator, or None when calibration is off.

    It is on unless `[noise] enabled = false` (or `--no-calibration`) turns it off, and
    always when learning: against the secondary when one is configured, else by repeating
    the safe records to the primary.
    """
    if settings.enabled is False and not learning:
        return None
    return Calibrator(settings, secondary)


def refusal(diff: Difference, pattern: str) -> str:
    """Why no rule may hide this difference ("" when one may).

    A body that is not JSON and differs between two answers of the primary (random bytes, a
    nonce in a page) has nothing finer to learn: the endpoint's body is not comparable, and
    only a `body` difference there is suppressed (its status and headers are still compared).
    """
    if diff.kind == "status":
        return "the status"
    if diff.kind == "type":
        return "a type change"
    if diff.kind == "body":
        return ""
    if pattern == "/":
        return "the whole body"
    if diff.kind == "header":
        return ""
    for value in (diff.primary, diff.candidate):
        if isinstance(value, dict):
            return "a whole object"
        if isinstance(value, list):
            return "an array"
    if pattern.endswith("/*"):
        return "every element of an array"
    return ""


@dataclass(slots=True)
class PathNoise:
    noise: int = 0
    raw: int = 0
    kinds: set[str] = field(default_factory=set)
    refused: str = ""
    normalizers: tuple[str, ...] | None = None  # None: no noise seen yet

    def add_noise(self, diff: Difference, reason: str) -> None:
        self.kinds.add(diff.kind)
        if reason and not self.refused:
            self.refused = reason
        if self.normalizers is None:
            self.normalizers = LEARNABLE_NORMALIZERS
        if diff.kind != "value":
            self.normalizers = ()
        else:
            self.normalizers = tuple(
                n for n in self.normalizers if equal_under(n, diff.primary, diff.candidate)
            )

    def rule(self) -> tuple[str, str | None]:
        """The rule for this path: ("ignore_headers" | "normalize" | "ignore", normalizer)."""
        if self.kinds <= {"header"}:
            return "ignore_headers", None
        if self.kinds <= {"value"}:
            return "normalize", self.normalizers[0] if self.normalizers else "volatile"
        return "ignore", None

    @property
    def not_comparable(self) -> bool:
        """The primary's own answers differ here as bodies that are not JSON."""
        return self.kinds == {"body"}

    def hides(self, diff: Difference) -> bool:
        """Whether this path's rule hides a candidate difference."""
        action, normalizer = self.rule()
        if self.not_comparable:
            return diff.kind == "body"
        if action == "ignore_headers":
            return diff.kind == "header"
        if action == "normalize":
            if diff.kind != "value":
                return False
            return normalizer == "volatile" or equal_under(
                normalizer or "", diff.primary, diff.candidate
            )
        return True


@dataclass(slots=True)
class EndpointNoise:
    pairs: int = 0
    compared: int = 0
    asked: int = 0  # references asked for while every safe record is calibrated
    offered: int = 0  # safe records seen since, of which `sample` are calibrated
    paths: dict[str, PathNoise] = field(default_factory=dict)
    routes: dict[Route, None] = field(default_factory=dict)

    def path(self, pattern: str) -> PathNoise | None:
        stats = self.paths.get(pattern)
        if stats is None and len(self.paths) < MAX_CALIBRATED_PATHS:
            stats = self.paths[pattern] = PathNoise()
        return stats


class Calibrator:
    """Counts noise, suppresses candidate differences that are noise, and says what it learned."""

    def __init__(self, settings: NoiseConfig, secondary: bool) -> None:
        self.settings = settings
        self.mode = "secondary" if secondary else "repeat"
        self.key = "secondary" if secondary else REPEAT  # the reference's outcome key
        self.pairs = 0
        self.discarded = 0  # pairs whose two primary answers had different statuses
        self.records = 0  # records offered to the calibration
        self.endpoints: dict[str, EndpointNoise] = {}
        self._offered = 0  # past the endpoint cap: records that could be sampled

    def reference_for(self, record: Record, endpoint: str, safe: bool | None = None) -> str | None:
        """The target asked for a reference answer to `record` (of `endpoint`), if any.

        `safe` is its endpoint's say (`safe = true` for the reads of an RPC API, which are
        POSTs); without one, the method decides."""
        self.records += 1
        if self.mode == "secondary":
            # Every write reaches the secondary, so its state follows the primary's.
            if not (record.method in SAFE_METHODS if safe is None else safe):
                return "secondary"
            return "secondary" if self._sampled(endpoint) else None
        if not (record.method in self.settings.repeat_methods if safe is None else safe):
            return None
        return "primary" if self._sampled(endpoint) else None

    def _sampled(self, endpoint: str) -> bool:
        """Whether the next record of `endpoint` is calibrated: every one until the endpoint
        has `full_pairs`, then `sample` of them, evenly spread."""
        ep = self._endpoint(endpoint)
        if ep is not None and ep.asked < self.settings.full_pairs:
            ep.asked += 1
            return True
        if ep is not None:
            ep.offered += 1
            offered = ep.offered
        else:
            self._offered += 1
            offered = self._offered
        rate = self.settings.sample
        return int(offered * rate) > int((offered - 1) * rate)

    def note_route(
        self, endpoint: str, method: str, template: str, match: tuple[Criterion, ...] = ()
    ) -> None:
        """Where `endpoint`'s records come from, so learned rules are keyed by the same."""
        ep = self._endpoint(endpoint)
        if ep is not None and len(ep.routes) < MAX_ROUTES_PER_ENDPOINT:
            ep.routes[(method, template, match)] = None

    def judge(self, exchange: Exchange) -> None:
        """Count this exchange's noise, then move its noise differences to `exchange.noise`."""
        ep = self._endpoint(exchange.endpoint)
        primary = exchange.outcomes.get("primary")
        if ep is None or not isinstance(primary, Response):
            return
        reference = exchange.outcomes.get(self.key)
        if isinstance(reference, Response) and reference.status != primary.status:
            # A write repeated (200, then 400 "already exists") differs for a reason, not
            # by noise: such a pair teaches nothing.
            self.discarded += 1
        elif isinstance(reference, Response):
            self._count_noise(ep, diff_responses(primary, reference, exchange.rules))
        if not isinstance(exchange.outcomes.get("candidate"), Response):
            return
        ep.compared += 1
        patterns = [fold_indices(d.path) for d in exchange.diffs]
        for pattern in set(patterns):
            stats = ep.path(pattern)
            if stats is not None:
                stats.raw += 1
        keep: list[Difference] = []
        for diff, pattern in zip(exchange.diffs, patterns, strict=True):
            (exchange.noise if self._suppressed(ep, pattern, diff) else keep).append(diff)
        exchange.diffs = keep

    def _count_noise(self, ep: EndpointNoise, diffs: list[Difference]) -> None:
        ep.pairs += 1
        self.pairs += 1
        seen: set[str] = set()
        for diff in diffs:
            pattern = fold_indices(diff.path)
            stats = ep.path(pattern)
            if stats is None:
                continue
            if pattern not in seen:
                stats.noise += 1
                seen.add(pattern)
            stats.add_noise(diff, refusal(diff, pattern))

    def _suppressed(self, ep: EndpointNoise, pattern: str, diff: Difference) -> bool:
        stats = ep.paths.get(pattern)
        if stats is None or stats.refused or not self._noisy(ep, stats):
            return False
        return stats.hides(diff)

    def _noisy(self, ep: EndpointNoise, stats: PathNoise) -> bool:
        s = self.settings
        if ep.pairs < s.min_samples or stats.noise == 0:
            return False
        rate = stats.noise / ep.pairs
        raw_rate = stats.raw / ep.compared if ep.compared else 0.0
        return rate >= s.min_rate and rate >= s.ratio * raw_rate

    def _endpoint(self, name: str) -> EndpointNoise | None:
        ep = self.endpoints.get(name)
        if ep is None and len(self.endpoints) < MAX_ENDPOINTS:
            ep = self.endpoints[name] = EndpointNoise()
        return ep

    def findings(self) -> list[Finding]:
        """Every path where the primary disagreed with itself, with the verdict on it."""
        out: list[Finding] = []
        for name, ep in sorted(self.endpoints.items()):
            for pattern, stats in sorted(ep.paths.items()):
                if stats.noise == 0:
                    continue
                counts = (name, pattern, stats.noise, ep.pairs, stats.raw, ep.compared)
                if stats.refused:
                    out.append(Finding(*counts, "refused", f"a rule would hide {stats.refused}"))
                elif self._noisy(ep, stats):
                    reason = "the body is not comparable" if stats.not_comparable else ""
                    out.append(Finding(*counts, "learned", reason, stats.rule()[1]))
                else:
                    out.append(Finding(*counts, "weak", self._weakness(ep, stats)))
        return out

    def _weakness(self, ep: EndpointNoise, stats: PathNoise) -> str:
        s = self.settings
        if ep.pairs < s.min_samples:
            return f"{ep.pairs} pairs, below min_samples {s.min_samples}"
        if stats.noise / ep.pairs < s.min_rate:
            return f"below min_rate {s.min_rate:g}"
        return f"the candidate differs far more often (ratio {s.ratio:g})"

    def not_comparable(self) -> list[str]:
        """Endpoints whose body is not comparable: the primary's own answers differ there as
        bodies that are not JSON, so only their status and headers are compared."""
        out = []
        for name, ep in sorted(self.endpoints.items()):
            stats = ep.paths.get("/")
            if stats is not None and stats.not_comparable and self._noisy(ep, stats):
                out.append(name)
        return out

    def summary(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "pairs": self.pairs,
            "discarded": self.discarded,
            "body_not_comparable": self.not_comparable(),
        }

    def notes(self) -> list[str]:
        """What stderr should say of the calibration: that it had nothing to go on, and
        where the body could not be compared."""
        out = []
        if self.pairs == 0 and self.records:
            if self.discarded:
                why = (
                    f"{self.discarded} discarded: the two answers of the primary had different "
                    "statuses (a write repeated?)"
                )
            elif self.mode == "repeat":
                methods = ", ".join(self.settings.repeat_methods)
                why = (
                    f"no record was safe to repeat (repeat_methods: {methods}); to calibrate "
                    "writes, configure a secondary"
                )
            else:
                why = "the secondary answered no record"
            out.append(f"calibration made no pairs: {why}; no difference was taken for noise")
        names = self.not_comparable()
        if names:
            out.append(
                f"body not comparable on {', '.join(map(repr, names))}: the primary's own "
                "answers differ there and are not JSON; status and headers still compared"
            )
        return out

    def refusals(self) -> list[str]:
        """One line per refused path, for stderr."""
        return [
            f"noise on {f.endpoint!r} at {f.pattern} ({f.rates()}) not suppressed: {f.reason}"
            for f in self.findings()
            if f.verdict == "refused"
        ]

    def render(self, run_id: str, stamp: str) -> str:
        """The learned rules as a TOML fragment to review and add to a config (`stamp`: when)."""
        routes = {name: list(ep.routes) for name, ep in self.endpoints.items()}
        return render_rules(self.findings(), routes, self.mode, self.pairs, run_id, stamp)
