"""`{var}` placeholders in strings and JSON values: compiled once, rendered for every record.

A string that is exactly one placeholder takes the variable's value with its JSON type
(`"{scorer}"` becomes `335`, not `"335"`); inside a longer string the value is interpolated
(a string as it is, anything else as its JSON text). `{{` and `}}` are literal braces; any
other brace is literal text, so JSON-looking strings need no escaping. Object keys are always
interpolated. A subtree without placeholders compiles to one shared constant, so rendering a
large fixed body costs nothing per record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import orjson

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Text:
    """A string with placeholders: `parts` alternates literal text and variable names."""

    parts: tuple[str, ...]
    whole: str | None  # the variable, when the string is exactly one placeholder


@dataclass(frozen=True, slots=True)
class Obj:
    items: tuple[tuple[Const | Text, Node], ...]


@dataclass(frozen=True, slots=True)
class Arr:
    items: tuple[Node, ...]


Node = Const | Text | Obj | Arr


def compile_text(text: str) -> Const | Text:
    """A string's placeholders, or a constant when it has none."""
    out: list[str] = []
    buffer: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        buffer.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if match.group(1) is None:
            buffer.append(token[0])  # `{{` -> `{`, `}}` -> `}`
            continue
        out.extend(("".join(buffer), match.group(1)))
        buffer = []
    buffer.append(text[position:])
    if not out:
        return Const("".join(buffer))
    out.append("".join(buffer))
    whole = out[1] if len(out) == 3 and out[0] == "" and out[2] == "" else None
    return Text(tuple(out), whole)


def compile_value(value: Any) -> Node:
    """A JSON value (TOML dates become ISO 8601 strings) with placeholders at any depth."""
    return _compile(to_json(value))


def _compile(value: Any) -> Node:
    if isinstance(value, str):
        return compile_text(value)
    if isinstance(value, dict):
        items = tuple((compile_text(k), _compile(v)) for k, v in value.items())
        if all(isinstance(k, Const) and isinstance(v, Const) for k, v in items):
            return Const(value)
        return Obj(items)
    if isinstance(value, list):
        nodes = tuple(_compile(v) for v in value)
        if all(isinstance(n, Const) for n in nodes):
            return Const(value)
        return Arr(nodes)
    return Const(value)


def to_json(value: Any) -> Any:
    """TOML's date and time values as ISO 8601 strings (UTC written `Z`); the rest as is."""
    if isinstance(value, datetime | date | time):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def render(node: Node, values: Mapping[str, Any]) -> Any:
    """The value of `node` with every placeholder filled from `values`."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Text):
        if node.whole is not None:
            return values[node.whole]
        return _interpolate(node, values)
    if isinstance(node, Obj):
        return {_key(k, values): render(v, values) for k, v in node.items}
    return [render(item, values) for item in node.items]


def _key(node: Const | Text, values: Mapping[str, Any]) -> str:
    if isinstance(node, Const):
        key: str = node.value
        return key
    return _interpolate(node, values)


def _interpolate(node: Text, values: Mapping[str, Any]) -> str:
    parts = node.parts
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        out.extend((as_text(values[parts[i]]), parts[i + 1]))
    return "".join(out)


def as_text(value: Any) -> str:
    """A value inside a longer string: strings as they are, the rest as JSON text."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def names_in(node: Node) -> set[str]:
    """Every variable a node's placeholders name."""
    if isinstance(node, Const):
        return set()
    if isinstance(node, Text):
        return set(node.parts[1::2])
    if isinstance(node, Obj):
        found: set[str] = set()
        for key, value in node.items:
            found |= names_in(key) | names_in(value)
        return found
    return set().union(*(names_in(item) for item in node.items))
