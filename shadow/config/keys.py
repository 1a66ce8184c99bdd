"""Every unknown key of a config file, found from the shipped config schema's key names.

The parser finds unknown keys table by table, after reading each table's values; a bad value
stops it first, so a file with a typo *and* a bad value would name only one of them per run.
When parsing fails, this walk over the raw TOML names the unknown keys the parser did not
reach, so one `shadow check` still names every problem. It reads only the key names of
shadow/schemas/config.schema.json (`properties`, `additionalProperties`, `items`); the values
stay the parser's to judge.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from shadow.config.table import did_you_mean


@cache
def _schema() -> dict[str, Any]:
    from importlib import resources  # only when a config file is read

    text = (resources.files("shadow") / "schemas" / "config.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def unknown_keys(data: Any) -> list[str]:
    """`key: unknown key (did you mean ...)` for each key of `data` the config has no place for."""
    found: list[str] = []
    stack: list[tuple[str, Any, Any]] = [("", data, _schema())]
    while stack:
        prefix, value, node = stack.pop()
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            stack.extend((f"{prefix}[{i}]", v, node["items"]) for i, v in enumerate(value))
            continue
        if not isinstance(value, dict) or not isinstance(node, dict):
            continue
        known: dict[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for name, member in value.items():
            key = f"{prefix}.{name}" if prefix else name
            if name in known:
                stack.append((key, member, known[name]))
            elif isinstance(extra, dict):
                stack.append((key, member, extra))
            elif extra is False:
                found.append(f"{key}: unknown key{did_you_mean(name, set(known))}")
    return sorted(found)
