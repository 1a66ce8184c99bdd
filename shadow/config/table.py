"""Reading one TOML table: typed getters that name the key, a check for leftovers, and `build`.

The split of work, stated once: a getter checks the TOML type of a key the file sets and
returns UNSET for one it does not; `build` passes only the keys that were set to a config
dataclass, so every default is written once, in the dataclass; the dataclass's `__post_init__`
checks ranges and choices (InvalidValue), which `build` reports as a ConfigError naming the
file and the key. A value built in code is therefore checked exactly as one read from a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from shadow.errors import ConfigError, InvalidValue

T = TypeVar("T")


class Unset:
    """A key the file does not set (falsy, so `t.strings("x") or ()` reads as a default)."""

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()  # the only instance: compared with `is`


def kind_name(value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def default_of(cls: type[Any], name: str) -> Any:
    """The default a config dataclass gives field `name` (for help texts)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise KeyError(name)


def did_you_mean(name: str, known: set[str]) -> str:
    """` (did you mean "x"?)` for the closest of `known`, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class UnknownKeys:
    """The unknown keys of a whole file, gathered so that one run of `check` names them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    def check(self) -> None:
        if len(self.found) == 1:
            key, _, problem = self.found[0].partition(": ")
            raise ConfigError(self.source, key, problem)
        if self.found:
            lines = "".join(f"\n  {line}" for line in self.found)
            unknown = all(": unknown " in line for line in self.found)
            what = "unknown keys" if unknown else "problems"
            raise ConfigError(self.source, "", f"{len(self.found)} {what}:{lines}")


class Table:
    """A TOML table being read; `prefix` is its dotted key (`targets.primary`).

    Unknown keys go to `unknown` (shared by the tables of one file) when given, so that the
    file's reader reports them all at once; without it, `done` raises for the first."""

    def __init__(
        self, source: str, prefix: str, data: Any, unknown: UnknownKeys | None = None
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, prefix, f"must be a table, not {kind_name(data)}")
        self.source, self.prefix, self.data = source, prefix, data
        self.seen: set[str] = set()
        self.unknown = unknown

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def get(self, name: str, kinds: tuple[type, ...], what: str) -> Any:
        """The value of `name` if it is one of `kinds`, UNSET if the table does not set it."""
        self.seen.add(name)
        if name not in self.data:
            return UNSET
        value = self.data[name]
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f"must be {what}, not a boolean")
        if not isinstance(value, kinds):
            raise self.fail(name, f"must be {what}, not {kind_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            # TOML has nan and inf; every range check (`< min`) passes a NaN, so none gets in.
            raise self.fail(name, f"must be a finite number, not {value}")
        return value

    def text(self, name: str) -> str | Unset:
        value: str | Unset = self.get(name, (str,), "a string")
        return value

    def number(self, name: str) -> float | Unset:
        value = self.get(name, (int, float), "a number")
        return value if value is UNSET else float(value)

    def integer(self, name: str) -> int | Unset:
        value: int | Unset = self.get(name, (int,), "an integer")
        return value

    def flag(self, name: str) -> bool | Unset:
        value: bool | Unset = self.get(name, (bool,), "true or false")
        return value

    def strings(self, name: str) -> tuple[str, ...] | Unset:
        if isinstance(self.data.get(name), str):
            self.seen.add(name)
            raise self.fail(name, "must be a list of strings, not a string")
        value: Any = self.get(name, (list,), "a list of strings")
        if value is UNSET:
            return value
        for item in value:
            if not isinstance(item, str):
                raise self.fail(name, f"must be a list of strings; found {kind_name(item)}")
        return tuple(value)

    def str_map(self, name: str) -> dict[str, str] | Unset:
        value: Any = self.get(name, (dict,), "a table of strings")
        if value is UNSET:
            return value
        for key, item in value.items():
            if not isinstance(item, str):
                raise ConfigError(self.source, f"{self.key(name)}.{key}", "must be a string")
        return dict(value)

    def table(self, name: str) -> Table:
        """The sub-table `name` (empty when the file does not set it)."""
        self.seen.add(name)
        return Table(self.source, self.key(name), self.data.get(name, {}), self.unknown)

    def child(self, name: str, data: Any) -> Table:
        """A table inside this one that is not a plain key, such as `template[2]` of a list."""
        return Table(self.source, self.key(name), data, self.unknown)

    def done(self) -> None:
        """Every key of the table was read: any other is unknown (with a did-you-mean)."""
        for name in sorted(set(self.data) - self.seen):
            problem = "unknown key" + did_you_mean(name, self.seen)
            if self.unknown is None:
                raise self.fail(name, problem)
            self.unknown.found.append(f"{self.key(name)}: {problem}")

    def build(self, cls: type[T], keys: Mapping[str, str] | None = None, **values: Any) -> T:
        """`cls(**values)` with the UNSET values left out, so the dataclass's defaults apply;
        an InvalidValue from its `__post_init__` becomes a ConfigError at the field's key
        (`keys` maps a field to its key where the two names differ)."""
        given = {name: value for name, value in values.items() if value is not UNSET}
        try:
            return cls(**given)
        except InvalidValue as exc:
            field, _, rest = exc.field.partition(".")
            key = (keys or {}).get(field, field) + (f".{rest}" if rest else "")
            raise self.fail(key, exc.problem) from None


def read_env_file(table: Table, key: str, base: Path) -> dict[str, str]:
    """The variables of the dotenv file that `key` names (relative to `base`); {} if none."""
    name = table.text(key)
    if not name:
        return {}
    path = base / name
    from dotenv import dotenv_values  # only for a config that names an env file

    try:
        with open(path, encoding="utf-8") as f:
            values = dotenv_values(stream=f)
    except (OSError, UnicodeDecodeError) as exc:
        raise table.fail(key, f"cannot read env file {path}: {exc}") from None
    return {k: v for k, v in values.items() if v is not None}
