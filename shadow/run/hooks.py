"""The hooks module (`[hooks] module = "hooks.py"`): small Python functions called in-process.

A module may define either or both of (README "Hooks"):

    def prepare_request(target: str, request: HookRequest) -> HookRequest | None:
        '''The request about to go to `target` (per target: sign it, add a tenant header);
        the request to send instead, or None to send it as it is.'''

    def normalize_body(target: str, endpoint: str, body: bytes, content_type: str) -> bytes:
        '''An answer's body before it is compared (a house date format made ISO, say).'''

They are called in the replay's event loop, for every request and answer, so they must be
quick and must not block. A hook that raises, or returns what it must not, never ends the
run: that record becomes an `error` of kind `hook` on that target's side, naming the hook and
the exception, and is counted as every record is. The module is imported once per process
(each `--workers` child imports it itself); a module that cannot be imported is a config
error (exit 2) naming it, before anything starts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from multidict import CIMultiDict

from shadow.config.load import Config
from shadow.errors import ConfigError
from shadow.model import REPEAT, Exchange, Failure, HookRequest, Record, Response, request_target
from shadow.replay.pool import BeforeSend

PrepareRequest = Callable[[str, HookRequest], HookRequest | None]
NormalizeBody = Callable[[str, str, bytes, str], bytes]
HOOK_NAMES = ("prepare_request", "normalize_body")


@dataclass(frozen=True, slots=True)
class Hooks:
    """The functions a hooks module defines (None for one it does not)."""

    path: str
    prepare_request: PrepareRequest | None = None
    normalize_body: NormalizeBody | None = None

    def sender(self, urls: Mapping[str, str]) -> BeforeSend:
        """`prepare_request` as the replayer's `before_send`, for targets at `urls`."""

        def before_send(
            target: str, record: Record, headers: CIMultiDict[str], body: bytes | None
        ) -> tuple[CIMultiDict[str], bytes | None] | Failure:
            return self.before_send(target, urls[target], record, headers, body)

        return before_send

    def before_send(
        self,
        target: str,
        base_url: str,
        record: Record,
        headers: CIMultiDict[str],
        body: bytes | None,
    ) -> tuple[CIMultiDict[str], bytes | None] | Failure:
        """`prepare_request` for one target: the headers and body to send, or a `hook`
        failure."""
        assert self.prepare_request is not None
        request = HookRequest(
            record.method,
            base_url,
            request_target(record.path),
            tuple(headers.items()),
            body or b"",
            record.name,
            record.vars,
        )
        try:
            changed = self.prepare_request(target, request)
        except Exception as exc:  # noqa: BLE001 - the user's code: this record's error
            return _failure("prepare_request", exc)
        if changed is None:
            return headers, body
        if not isinstance(changed, HookRequest):
            return _returned("prepare_request", changed, "a HookRequest or None")
        if (changed.method, changed.url, changed.path) != (request.method, base_url, request.path):
            return Failure(
                "hook", "prepare_request: changed the method, url or path (only headers and body)"
            )
        if changed.body is not request.body and not isinstance(changed.body, bytes):
            return _returned("prepare_request", changed.body, "bytes as the body")
        sent = body if changed.body is request.body else changed.body
        return CIMultiDict(changed.headers), sent

    def normalize(self, exchange: Exchange) -> None:
        """`normalize_body` over every answer of `exchange` (a calibration answer as its
        target's), before it is compared; a failing side becomes a `hook` error."""
        assert self.normalize_body is not None
        for side, outcome in list(exchange.outcomes.items()):
            if not isinstance(outcome, Response):
                continue
            target = "primary" if side == REPEAT else side
            media = outcome.header("content-type") or ""
            try:
                body = self.normalize_body(target, exchange.endpoint, outcome.body, media)
            except Exception as exc:  # noqa: BLE001 - the user's code: this record's error
                exchange.outcomes[side] = _failure("normalize_body", exc, outcome.latency_ms)
                continue
            if not isinstance(body, bytes):
                failure = _returned("normalize_body", body, "bytes", outcome.latency_ms)
                exchange.outcomes[side] = failure
            elif body is not outcome.body:
                exchange.outcomes[side] = Response(
                    outcome.status, outcome.headers, body, outcome.latency_ms
                )


def _failure(hook: str, exc: Exception, latency_ms: float = 0.0) -> Failure:
    return Failure("hook", f"{hook}: {type(exc).__name__}: {exc}", latency_ms)


def _returned(hook: str, value: Any, wanted: str, latency_ms: float = 0.0) -> Failure:
    return Failure("hook", f"{hook}: returned {type(value).__name__}, not {wanted}", latency_ms)


def load_hooks(config: Config) -> Hooks | None:
    """The config's hooks module imported (None without one); ConfigError if it cannot be."""
    path = config.hooks
    if path is None:
        return None
    module = _import(config.source, path)
    found: dict[str, Any] = {}
    for name in HOOK_NAMES:
        function = getattr(module, name, None)
        if function is not None and not callable(function):
            raise ConfigError(config.source, "hooks.module", f"{path}: {name} is not a function")
        found[name] = function
    if not any(found.values()):
        names = " or ".join(HOOK_NAMES)
        raise ConfigError(config.source, "hooks.module", f"{path} defines neither {names}")
    return Hooks(path, **found)


def _import(source: str, path: str) -> ModuleType:
    # A name of its own per file, so two configs' hooks never share a module.
    name = "shadow_hooks_" + hashlib.sha256(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(source, "hooks.module", f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code, reported as a config problem
        del sys.modules[name]
        raise ConfigError(
            source, "hooks.module", f"{path} cannot be imported: {type(exc).__name__}: {exc}"
        ) from None
    return module
