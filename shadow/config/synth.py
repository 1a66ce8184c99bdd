"""The `[synth]` config section: variables and weighted request templates, checked up front.

Every problem is a ConfigError naming the file and the key (`synth.template[2].weight`), and
everything that can be known before generating is checked here: an unknown generator, a weight
that is not positive, a placeholder naming no variable, an auth profile whose claims need a
variable the records would not carry. Generation itself (shadow/sources/synth.py) then cannot fail on
the config, only on a drawn value that makes a request invalid.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from shadow.config.templating import Node, compile_text, compile_value, names_in, to_json
from shadow.errors import ConfigError

if TYPE_CHECKING:
    from shadow.config.load import AuthProfile, _Table

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


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a template, with `{var}` placeholders still to fill."""

    method: str
    path: Node
    headers: tuple[tuple[str, Node], ...] = ()
    body: Node | None = None
    body_text: Node | None = None
    name: str | None = None
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """A weighted `[[synth.template]]`: one request, or a scenario of steps sharing variables.

    `needs` is every variable an instance draws, in declaration order; `record_vars` the ones
    written into each record's `vars` (auth claims read them).
    """

    weight: float
    steps: tuple[Step, ...]
    lane: Node | None
    scenario: bool
    needs: tuple[str, ...]
    record_vars: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SynthConfig:
    variables: tuple[Variable, ...]
    templates: tuple[Template, ...]
    seed: int = 0
    count: int = 100

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


def parse_synth(t: _Table, auth: Mapping[str, AuthProfile]) -> SynthConfig:
    """`[synth]`: `seed`, `count`, `[synth.vars]` and one or more `[[synth.template]]`."""
    seed = t.integer("seed", 0)
    count = t.integer("count", 100, minimum=1)
    variables = _variables(t.table("vars"))
    items = t.get("template", (list,), [], "a list of tables ([[synth.template]])")
    if not items:
        raise t.fail("template", "missing (at least one [[synth.template]] with a path)")
    templates = tuple(
        _template(_child(t, f"template[{i}]", item), variables, auth)
        for i, item in enumerate(items)
    )
    t.done()
    return SynthConfig(variables, templates, seed, count)


def _child(t: _Table, name: str, data: Any) -> _Table:
    return type(t)(t.source, t.key(name), data)


def _variables(t: _Table) -> tuple[Variable, ...]:
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


def _json_node(t: _Table, key: str, value: Any) -> Node:
    try:
        orjson.dumps(to_json(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise t.fail(key, f"cannot be sent as JSON: {exc}") from None
    return compile_value(value)


def _checked(t: _Table, key: str, node: Node, known: list[str]) -> Node:
    missing = sorted(names_in(node) - set(known))
    if missing:
        raise t.fail(key, f"placeholder {{{missing[0]}}} names no variable defined before it")
    return node


def _generator(g: _Table, name: str) -> Variable:
    kind = g.text("gen")
    if not kind:
        raise g.fail("gen", f"missing (one of {', '.join(GENERATORS)})")
    if kind not in GENERATORS:
        raise g.fail("gen", f"unknown generator {kind!r} (use one of {', '.join(GENERATORS)})")
    variable = _choice(g, name) if kind == "choice" else _ranged(g, name, kind)
    g.done()
    return variable


def _ranged(g: _Table, name: str, kind: str) -> Variable:
    pool = g.integer("pool", 0)
    if pool > MAX_POOL:
        raise g.fail("pool", f"must be at most {MAX_POOL}, not {pool}")
    if kind == "int":
        low: int = g.get("min", (int,), 0, "an integer")
        high: int | None = g.get("max", (int,), None, "an integer")
        if high is None:
            raise g.fail("max", "missing (the largest value, inclusive)")
        if high < low:
            raise g.fail("max", f"must be at least min ({low}), not {high}")
        return Variable(name, kind, low=low, high=high, pool=pool)
    if kind == "hex":
        size = g.integer("bytes", 32, minimum=1)
        if size > 4096:
            raise g.fail("bytes", f"must be at most 4096, not {size}")
        return Variable(name, kind, hex_bytes=size, prefix=g.text("prefix", "0x"), pool=pool)
    if kind == "timestamp":
        low, high = _epoch_ms(g, "start"), _epoch_ms(g, "end")
        if high < low:
            raise g.fail("end", "must not be before start")
        time_format = g.text("format", "iso", choices=TIME_FORMATS)
        return Variable(name, kind, low=low, high=high, time_format=time_format, pool=pool)
    return Variable(name, kind, pool=pool)


def _epoch_ms(g: _Table, key: str) -> int:
    what = "a date-time such as 2026-01-01T00:00:00Z, or epoch seconds"
    value = g.get(key, (datetime, date, str, int, float), None, what)
    if value is None:
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


def _choice(g: _Table, name: str) -> Variable:
    raw = g.get("values", (list,), [], "a list of values")
    if not raw:
        raise g.fail("values", "missing or empty (the values to choose from)")
    values = tuple(to_json(v) for v in raw)
    _json_node(g, "values", list(values))
    weights = g.get("weights", (list,), [], "a list of positive numbers")
    if weights and len(weights) != len(values):
        raise g.fail("weights", f"has {len(weights)} weights for {len(values)} values")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise g.fail("weights", f"must be positive numbers; found {weight!r}")
    cum_weights = tuple(itertools.accumulate(float(w) for w in weights))
    return Variable(name, "choice", values=values, cum_weights=cum_weights)


def _template(
    t: _Table, variables: tuple[Variable, ...], auth: Mapping[str, AuthProfile]
) -> Template:
    weight = t.get("weight", (int, float), 1, "a positive number")
    if weight <= 0:
        raise t.fail("weight", f"must be positive, not {weight}")
    known = [v.name for v in variables]
    scenario = "step" in t.data
    if scenario:
        headers = t.str_map("headers")
        profile = _profile(t, auth)
        raw = t.get("step", (list,), [], "a list of tables ([[synth.template.step]])")
        if not raw:
            raise t.fail("step", "empty (a scenario needs at least one step)")
        steps = []
        for i, item in enumerate(raw):
            child = _child(t, f"step[{i}]", item)
            steps.append(_step(child, known, headers, profile, auth))
            child.done()
    else:
        steps = [_step(t, known, {}, None, auth)]
    lane_text = t.text("lane")
    lane = _checked(t, "lane", compile_text(lane_text), known) if lane_text else None
    used = set().union(*(_step_names(step) for step, _ in steps))
    used |= names_in(lane) if lane is not None else set()
    record_vars = _record_vars(t, known, used, steps, auth)
    template = Template(
        weight=float(weight),
        steps=tuple(step for step, _ in steps),
        lane=lane,
        scenario=scenario,
        needs=_closure(variables, used | set(record_vars)),
        record_vars=record_vars,
    )
    t.done()
    return template


def _profile(t: _Table, auth: Mapping[str, AuthProfile]) -> tuple[str, str] | None:
    """The template's or step's `auth`, with the key that set it (for later errors)."""
    name = t.text("auth")
    if not name:
        return None
    if name not in auth:
        raise t.fail("auth", f"no [auth.{name}] profile is defined")
    return name, t.key("auth")


def _step(
    s: _Table,
    known: list[str],
    headers: Mapping[str, str],
    default_profile: tuple[str, str] | None,
    auth: Mapping[str, AuthProfile],
) -> tuple[Step, tuple[str, str] | None]:
    method = s.text("method", "GET").upper()
    if not method.isalpha():
        raise s.fail("method", f"must be a word such as GET, not {method!r}")
    path = s.text("path")
    if not path.startswith("/"):
        raise s.fail("path", "missing or not starting with '/' (such as /items/{id})")
    own = s.str_map("headers")
    merged = {k: v for k, v in headers.items() if k.lower() not in {o.lower() for o in own}}
    merged.update(own)
    for name, value in merged.items():
        if not name or any(c in name for c in " :\r\n") or "\r" in value or "\n" in value:
            raise s.fail("headers", f"invalid header {name!r}")
    body = None
    if "body" in s.data:
        body = _checked(s, "body", _json_node(s, "body", s.data["body"]), known)
    s.seen.add("body")
    text = s.get("body_text", (str,), None, "a string")
    if text is not None and body is not None:
        raise s.fail("body_text", "give body or body_text, not both")
    profile = _profile(s, auth) or default_profile
    step = Step(
        method=method,
        path=_checked(s, "path", compile_text(path), known),
        headers=tuple(
            (k, _checked(s, f"headers.{k}", compile_text(v), known)) for k, v in merged.items()
        ),
        body=body,
        body_text=None if text is None else _checked(s, "body_text", compile_text(text), known),
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
    t: _Table,
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
    listed = t.strings("vars")
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
