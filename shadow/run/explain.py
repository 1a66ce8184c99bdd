"""The stderr summary's explanations: what differed (with an example), what failed and what to try.

Counts alone leave a person to open the events; these lines say which paths differed most with
one example each, which error kinds came up with one message and a hint, and which server
crashed or was restarted. They are built from the events as written (so after redaction, and
for a `--workers` run from the children's forwarded events) and kept in bounded tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from shadow.events.terminal import plain, show_value
from shadow.model import fold_indices

TOP_PATHS = 5
TOP_ERRORS = 3
MAX_KEYS = 200  # distinct (endpoint, path) and (kind, side) kept; the rest only counted

# What to try for each error kind a replay reports (shadow.replay.pool, shadow.run.pipeline).
HINTS = {
    "timeout": "raise --timeout ([replay] timeout_s) or lower --concurrency",
    "refused": "nothing listens at the target's url: is the server up, is the port right?",
    "disconnected": "the server closed the connection: see its log in the run dir",
    "reset": "the server reset the connection: see its log in the run dir",
    "io": "a network error: see the server's log in the run dir",
    "bad_http": "the answer is not valid HTTP: is the url's scheme (http/https) right?",
    "bad_body": "the body ended early or its encoding is broken: see the server's log",
    "too_large": "raise [replay] max_body_bytes if such bodies are expected",
    "auth": "check the [auth] profile the record uses (shadow check -c FILE)",
    "server_down": "the target was restarting after it exited: see server_exited events",
    "cancelled": "the run stopped before these finished (a signal, --duration or a death)",
    "client_error": "the request could not be sent as recorded: see the message",
    "hook": "a function of the [hooks] module raised: the message names it and the exception",
}


@dataclass(slots=True)
class _Seen:
    count: int
    kinds: set[str]
    example: str


class Explainer:
    """Watches the events written and says, at the end, what they mean."""

    def __init__(self) -> None:
        self.paths: dict[tuple[str, str], _Seen] = {}
        self.errors: dict[tuple[str, str], _Seen] = {}
        self.exits: list[str] = []

    def observe(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "mismatch":
            self._mismatch(fields)
        elif event == "error":
            key = (str(fields.get("error")), str(fields.get("side")))
            _count(
                self.errors,
                key,
                "",
                lambda: plain(f"{fields.get('endpoint')}: {fields.get('message')}"),
            )
        elif event == "server_exited" and not fields.get("expected"):
            self.exits.append(
                f"{fields.get('target')} exited unexpectedly (code {fields.get('returncode')})"
            )

    def _mismatch(self, fields: Mapping[str, Any]) -> None:
        endpoint = str(fields.get("endpoint"))
        seen: set[str] = set()
        for diff in fields.get("diffs") or []:
            path, kind = fold_indices(str(diff.get("path"))), str(diff.get("kind"))
            if diff.get("suppressed"):
                continue
            if path in seen:  # a path repeated down a list counts once per exchange
                if (known := self.paths.get((endpoint, path))) is not None:
                    known.kinds.add(kind)
                continue
            seen.add(path)
            _count(self.paths, (endpoint, path), kind, partial(_example, diff, kind, fields))

    def lines(self, restarts: Mapping[str, Mapping[str, Any]], details: bool = True) -> list[str]:
        """The explanations, each one line for stderr (empty when there is nothing to say);
        without `details`, only the servers' (the paths and errors were shown elsewhere)."""
        out = []
        if self.paths and details:
            out.append("top differences:")
            for (endpoint, path), seen in _top(self.paths, TOP_PATHS):
                kinds = ",".join(sorted(seen.kinds))
                out.append(f"  {seen.count} x {endpoint} {path} ({kinds}): {seen.example}")
        if self.errors and details:
            out.append("errors:")
            for (kind, side), seen in _top(self.errors, TOP_ERRORS):
                out.append(f"  {seen.count} x {kind} ({side}), e.g. {seen.example}")
                if kind in HINTS:
                    out.append(f"    hint: {HINTS[kind]}")
        out += self.exits
        for target, info in restarts.items():
            out.append(
                f"{target} was restarted {info.get('restarts')} time(s),"
                f" down {info.get('down_s')} s in all"
            )
        return out


def _example(diff: Mapping[str, Any], kind: str, fields: Mapping[str, Any]) -> str:
    primary = "(absent)" if kind == "extra" else show_value(diff.get("primary"))
    candidate = "(absent)" if kind == "missing" else show_value(diff.get("candidate"))
    return f"{primary} -> {candidate} (seq {fields.get('seq')})"


def _count(
    table: dict[tuple[str, str], _Seen],
    key: tuple[str, str],
    kind: str,
    example: Callable[[], str],
) -> None:
    """One more of `key`; its example (the first one seen) is made only when it is new."""
    seen = table.get(key)
    if seen is None:
        if len(table) >= MAX_KEYS:
            return
        table[key] = seen = _Seen(0, set(), example())
    seen.count += 1
    if kind:
        seen.kinds.add(kind)


def _top(table: dict[tuple[str, str], _Seen], n: int) -> list[tuple[tuple[str, str], _Seen]]:
    return sorted(table.items(), key=lambda kv: (-kv[1].count, kv[0]))[:n]
