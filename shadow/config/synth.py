"""The `[synth]` config section: variables and weighted request templates, checked up front.

Every problem is a ConfigError naming the file and the key (`synth.template[2].weight`), and
everything that can be known before generating is checked here: an unknown generator, a weight
that is not positive, a placeholder naming no variable, an auth profile whose claims need a
variable the records would not carry. Generation itself (shadow/sources/synth.py) then cannot fail on
the config, only on a drawn value that makes a request invalid.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from shadow.config.auth import AuthProfile
from shadow.config.table import UNSET, Table
from shadow.config.templating import Node, compile_text, compile_value, names_in, to_json
from shadow.errors import ConfigError, InvalidValue, check_at_least, check_choice

GENERATORS = ("address", "uuid", "int", "hex", "choice", "timestamp")
TIME_FORMATS = ("iso", "epoch", "epoch_ms")
MAX_POOL = 1_000_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Variable:
    """One `[synth.vars]` entry: a generator (`gen`), or a value derived from earlier ones."""

    name: str
    gen: str = ""  # "" = `value` rendered from the variables declared before this one
    value: Node | None = None
    low: int = 0  # int: inclusive range; timestamp: epoch milliseconds
    high: int = 0
    values: tuple[Any, ...] = ()  # choice
    cum_weights: tuple[float, ...] = ()  # choice; empty = equally likely
    hex_bytes: int = 32
    prefix: str = "0x"
    time_format: str = "iso"
    pool: int = 0  # > 0: draw from this many values fixed at the start

    def __post_init__(self) -> None:
        check_at_least("pool", self.pool, 0)
        if self.pool > MAX_POOL:
            raise InvalidValue("pool", f"must be at most {MAX_POOL}, not {self.pool}")
        if self.gen == "int" and self.high < self.low:
            raise InvalidValue("high", f"must be at least min ({self.low}), not {self.high}")
        if self.gen == "hex":
            check_at_least("hex_bytes", self.hex_bytes, 1)
            if self.hex_bytes > 4096:
                raise InvalidValue("hex_bytes", f"must be at most 4096, not {self.hex_bytes}")
        if self.gen == "timestamp":
            if self.high < self.low:
                raise InvalidValue("high", "must not be before start")
            check_choice("time_format", self.time_format, TIME_FORMATS)


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a template, with `{var}` placeholders still to fill."""

    path: Node
    method: str = "GET"
    headers: tuple[tuple[str, Node], ...] = ()
    body: Node | None = None
    body_text: Node | None = None
    name: str | None = None
    auth: str | None = None

    def __post_init__(self) -> None:
        if not self.method.isascii() or not self.method.isalpha():
            raise InvalidValue("method", f"must be a word such as GET, not {self.method!r}")


@dataclass(frozen=True, slots=True)
class Template:
    """A weighted `[[synth.template]]`: one request, or a scenario of steps sharing variables.

    `needs` is every variable an instance draws, in declaration order; `record_vars` the ones
    written into each record's `vars` (auth claims read them).
    """

    steps: tuple[Step, ...]
    lane: Node | None
    scenario: bool
    needs: tuple[str, ...]
    record_vars: tuple[str, ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise InvalidValue("weight", f"must be positive, not {self.weight:g}")


@dataclass(frozen=True, slots=True)
class SynthConfig:
    variables: tuple[Variable, ...]
    templates: tuple[Template, ...]
    seed: int = 0
    count: int = 100
    # `[[replay.capture]]` names: `{NAME}` in a step stays in the record, for the replay to
    # fill per target with the value that target's answer gave (shadow.replay.correlate).
    captures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_at_least("seed", self.seed, 0)
        check_at_least("count", self.count, 1)

    def describe(self) -> dict[str, Any]:
        """A short JSON-able view for `shadow check`."""
        return {
            "seed": self.seed,
            "count": self.count,
            "vars": {v.name: v.gen or "derived" for v in self.variables},
            "templates": [
                {"weight": t.weight, "scenario": t.scenario, "steps": len(t.steps)}
                for t in self.templates
            ],
        }


def parse_synth(
    t: Table, auth: Mapping[str, AuthProfile], captures: tuple[str, ...] = ()
) -> SynthConfig:
    """`[synth]`: `seed`, `count`, `[synth.vars]` and one or more `[[synth.template]]`;
    `captures` are the `[[replay.capture]]` names steps may use."""
    seed, count = t.integer("seed"), t.integer("count")
    variables = _variables(t.table("vars"))
    for variable in variables:
        if variable.name in captures:
            raise t.fail(f"vars.{variable.name}", "is also a [[replay.capture]] name: rename one")
    items = t.get("template", (list,), "a list of tables ([[synth.template]])")
    if not items:
        raise t.fail("template", "missing (at least one [[synth.template]] with a path)")
    templates = tuple(
        _template(t.child(f"template[{i}]", item), variables, auth, captures)
        for i, item in enumerate(items)
    )
    config = t.build(
        SynthConfig,
        variables=variables,
        templates=templates,
        seed=seed,
        count=count,
        captures=captures,
    )
    t.done()
    return config


def _variables(t: Table) -> tuple[Variable, ...]:
    out: list[Variable] = []
    for name in list(t.data):
        if not _NAME.fullmatch(name):
            raise t.fail(
                name, "a variable name is letters, digits and _, not starting with a digit"
            )
        value = t.data[name]
        if isinstance(value, dict):
            out.append(_generator(t.table(name), name))
            continue
        t.seen.add(name)
        node = _checked(t, name, _json_node(t, name, value), [v.name for v in out])
        out.append(Variable(name, value=node))
    t.done()
    return tuple(out)


def _json_node(t: Table, key: str, value: Any) -> Node:
    try:
        orjson.dumps(to_json(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise t.fail(key, f"cannot be sent as JSON: {exc}") from None
    return compile_value(value)


def _checked(t: Table, key: str, node: Node, known: list[str]) -> Node:
    missing = sorted(names_in(node) - set(known))
    if missing:
        raise t.fail(key, f"placeholder {{{missing[0]}}} names no variable defined before it")
    return node


def _generator(g: Table, name: str) -> Variable:
    kind = g.text("gen")
    if not kind:
        raise g.fail("gen", f"missing (one of {', '.join(GENERATORS)})")
    if kind not in GENERATORS:
        raise g.fail("gen", f"unknown generator {kind!r} (use one of {', '.join(GENERATORS)})")
    variable = _choice(g, name) if kind == "choice" else _ranged(g, name, kind)
    g.done()
    return variable


def _ranged(g: Table, name: str, kind: str) -> Variable:
    pool = g.integer("pool")
    if kind == "int":
        low, high = g.integer("min"), g.integer("max")
        if high is UNSET:
            raise g.fail("max", "missing (the largest value, inclusive)")
        keys = {"low": "min", "high": "max"}
        return g.build(Variable, keys, name=name, gen=kind, low=low, high=high, pool=pool)
    if kind == "hex":
        return g.build(
            Variable,
            {"hex_bytes": "bytes"},
            name=name,
            gen=kind,
            hex_bytes=g.integer("bytes"),
            prefix=g.text("prefix"),
            pool=pool,
        )
    if kind == "timestamp":
        return g.build(
            Variable,
            {"low": "start", "high": "end", "time_format": "format"},
            name=name,
            gen=kind,
            low=_epoch_ms(g, "start"),
            high=_epoch_ms(g, "end"),
            time_format=g.text("format"),
            pool=pool,
        )
    return g.build(Variable, name=name, gen=kind, pool=pool)


def _epoch_ms(g: Table, key: str) -> int:
    what = "a date-time such as 2026-01-01T00:00:00Z, or epoch seconds"
    value = g.get(key, (datetime, date, str, int, float), what)
    if value is UNSET:
        raise g.fail(key, f"missing ({what})")
    if isinstance(value, int | float):
        return int(value * 1000)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise g.fail(key, f"not an ISO 8601 date-time: {value!r}") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _choice(g: Table, name: str) -> Variable:
    raw = g.get("values", (list,), "a list of values")
    if not raw:
        raise g.fail("values", "missing or empty (the values to choose from)")
    values = tuple(to_json(v) for v in raw)
    _json_node(g, "values", list(values))
    weights = g.get("weights", (list,), "a list of positive numbers") or []
    if weights and len(weights) != len(values):
        raise g.fail("weights", f"has {len(weights)} weights for {len(values)} values")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise g.fail("weights", f"must be positive numbers; found {weight!r}")
        if not math.isfinite(weight):
            raise g.fail("weights", f"must be finite numbers; found {weight!r}")
    cum_weights = tuple(itertools.accumulate(float(w) for w in weights))
    return g.build(Variable, name=name, gen="choice", values=values, cum_weights=cum_weights)


def _template(
    t: Table,
    variables: tuple[Variable, ...],
    auth: Mapping[str, AuthProfile],
    captures: tuple[str, ...] = (),
) -> Template:
    weight = t.get("weight", (int, float), "a positive number")
    known = [v.name for v in variables]
    usable = known + list(captures)  # what a step may name; a capture is filled at replay
    scenario = "step" in t.data
    if scenario:
        headers = t.str_map("headers") or {}
        profile = _profile(t, auth)
        raw = t.get("step", (list,), "a list of tables ([[synth.template.step]])")
        if not raw:
            raise t.fail("step", "empty (a scenario needs at least one step)")
        steps = []
        for i, item in enumerate(raw):
            child = t.child(f"step[{i}]", item)
            steps.append(_step(child, usable, headers, profile, auth))
            child.done()
    else:
        steps = [_step(t, usable, {}, None, auth)]
    lane_text = t.text("lane")
    lane = _checked(t, "lane", compile_text(lane_text), known) if lane_text else None
    used = set().union(*(_step_names(step) for step, _ in steps)) - set(captures)
    used |= names_in(lane) if lane is not None else set()
    record_vars = _record_vars(t, known, used, steps, auth)
    template = t.build(
        Template,
        weight=weight,
        steps=tuple(step for step, _ in steps),
        lane=lane,
        scenario=scenario,
        needs=_closure(variables, used | set(record_vars)),
        record_vars=record_vars,
    )
    t.done()
    return template


def _profile(t: Table, auth: Mapping[str, AuthProfile]) -> tuple[str, str] | None:
    """The template's or step's `auth`, with the key that set it (for later errors)."""
    name = t.text("auth")
    if not name:
        return None
    if name not in auth:
        raise t.fail("auth", f"no [auth.{name}] profile is defined")
    return name, t.key("auth")


def _step(
    s: Table,
    known: list[str],
    headers: Mapping[str, str],
    default_profile: tuple[str, str] | None,
    auth: Mapping[str, AuthProfile],
) -> tuple[Step, tuple[str, str] | None]:
    method = s.text("method")
    path = s.text("path")
    if not path or not path.startswith("/"):
        raise s.fail("path", "missing or not starting with '/' (such as /items/{id})")
    own = s.str_map("headers") or {}
    merged = {k: v for k, v in headers.items() if k.lower() not in {o.lower() for o in own}}
    merged.update(own)
    for name, value in merged.items():
        if not name or any(c in name for c in " :\r\n") or "\r" in value or "\n" in value:
            raise s.fail("headers", f"invalid header {name!r}")
    body = None
    if "body" in s.data:
        body = _checked(s, "body", _json_node(s, "body", s.data["body"]), known)
    s.seen.add("body")
    text = s.get("body_text", (str,), "a string")
    if text is not UNSET and body is not None:
        raise s.fail("body_text", "give body or body_text, not both")
    profile = _profile(s, auth) or default_profile
    step = s.build(
        Step,
        method=method.upper() if isinstance(method, str) and method.isascii() else method,
        path=_checked(s, "path", compile_text(path), known),
        headers=tuple(
            (k, _checked(s, f"headers.{k}", compile_text(v), known)) for k, v in merged.items()
        ),
        body=body,
        body_text=None if text is UNSET else _checked(s, "body_text", compile_text(text), known),
        name=s.text("name") or None,
        auth=profile[0] if profile else None,
    )
    return step, profile


def _step_names(step: Step) -> set[str]:
    found: set[str] = set()
    for node in (step.path, step.body, step.body_text, *(v for _, v in step.headers)):
        if node is not None:
            found |= names_in(node)
    return found


def _record_vars(
    t: Table,
    known: list[str],
    used: set[str],
    steps: list[tuple[Step, tuple[str, str] | None]],
    auth: Mapping[str, AuthProfile],
) -> tuple[str, ...]:
    """The variables each record carries: `vars` if given, else all it uses and its claims need."""
    claims: dict[str, tuple[str, str]] = {}  # variable -> (profile, key that chose it)
    for _, chosen in steps:
        if chosen is not None and auth[chosen[0]].type == "jwt":
            for name in claim_names(auth[chosen[0]].claims):
                claims.setdefault(name, chosen)
    for name, (profile, key) in claims.items():
        if name not in known:
            raise ConfigError(
                t.source,
                key,
                f"[auth.{profile}] claims use {{{name}}}, which no [synth.vars] entry defines",
            )
    if "vars" not in t.data:
        return tuple(n for n in known if n in used or n in claims)
    listed = t.strings("vars") or ()
    for name in listed:
        if name not in known:
            raise t.fail("vars", f"{name!r} names no variable in [synth.vars]")
    for name, (profile_name, _) in claims.items():
        if name not in listed:
            raise t.fail("vars", f"[auth.{profile_name}] claims use {{{name}}}: list {name!r} here")
    return tuple(dict.fromkeys(listed))


def claim_names(value: Any) -> set[str]:
    """The variables an auth profile's claims name (`{address}` in `did:pkh:...:{address}`)."""
    if isinstance(value, str):
        names = set()
        try:
            for _, field, _, _ in string.Formatter().parse(value):
                match = _NAME.match(field or "")
                if match:
                    names.add(match.group(0))
        except ValueError:
            return set()  # a malformed claim template is reported by the auth profile itself
        return names
    if isinstance(value, Mapping):
        return set().union(*(claim_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(claim_names(v) for v in value))
    return set()


def _closure(variables: tuple[Variable, ...], wanted: set[str]) -> tuple[str, ...]:
    """`wanted` plus what derived variables among them are built from, in declaration order."""
    needed = set(wanted)
    for variable in reversed(variables):
        if variable.name in needed and variable.value is not None:
            needed |= names_in(variable.value)
    return tuple(v.name for v in variables if v.name in needed)
