"""The errors shadow reports to its user, each carrying the exit code it ends the command with.

    ShadowError                      exit_code
    ├── UsageError                   2  bad command line (argparse's own usage errors exit 2 too)
    ├── ConfigError                  2  bad config file or key (names the file and key)
    ├── InputError                   2  a log that cannot be opened or is of no known format
    ├── PortInUseError               2  a managed target's port is taken before it starts
    ├── OutputError                  2  the events output or the run dir cannot be written
    └── TargetError                  3  a target never became ready, or a managed one died
        ├── ServerStartError            never answered its health check (managed or attached),
        │                               or exited while starting
        ├── ServerExitedError           a managed server exited during the run
        └── ResetError                  a target's reset (`[targets.NAME.reset]`) failed or
                                        timed out, before the replay or a `--loop` pass

    InvalidValue (a ValueError)         a config value out of range, raised by the dataclass that
                                        holds it; the config parser reports it as a ConfigError

Outside the tree: Ctrl-C before a run has its own handlers in place (while a config is read,
say) exits 130. Anything else that escapes a command is a bug in shadow: `cli.main` says so on
stderr with the traceback and exits BUG_EXIT_CODE (70, EX_SOFTWARE), so a crash is never read
as a verdict (1 means differences were found, 0 that none were). A user error never shows a
traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

BUG_EXIT_CODE = 70  # EX_SOFTWARE in sysexits.h: an internal software error
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


class ShadowError(Exception):
    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ShadowError):
    exit_code = 2


class ConfigError(ShadowError):
    exit_code = 2

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


class InputError(ShadowError):
    exit_code = 2


class PortInUseError(ShadowError):
    exit_code = 2


class OutputError(ShadowError):
    exit_code = 2


class TargetError(ShadowError):
    exit_code = 3

    def __init__(self, target: str, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.log_tail = log_tail or []


class ServerStartError(TargetError):
    pass


class ServerExitedError(TargetError):
    pass


class ResetError(TargetError):
    pass


class InvalidValue(ValueError):
    """A setting out of its range, raised by a config dataclass's `__post_init__`, so a value
    built in code is checked as one read from a file. `field` names it; the config parser turns
    it into a ConfigError naming the file and the key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# Checks for `__post_init__`, each raising InvalidValue with the message users see.


def check_at_least(field: str, value: float, minimum: float) -> None:
    """`value` is a finite number, at least `minimum` (NaN and infinities are refused)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(field, f"must be a finite number, not {value}")
    if value < minimum:
        raise InvalidValue(field, f"must be at least {_show(minimum)}, not {_show(value)}")


def check_above(field: str, value: float, minimum: float, why: str = "") -> None:
    """`value` is a finite number above `minimum`; `why` says what the excluded bound would
    have meant (a timeout of 0 is not "no timeout")."""
    check_at_least(field, value, minimum)
    if value == minimum:
        raise InvalidValue(field, f"must be above {_show(minimum)}{why}")


def check_fraction(field: str, value: float) -> None:
    """`value` is a fraction of exchanges, 0 to 1."""
    check_at_least(field, value, 0)
    if value > 1:
        raise InvalidValue(field, f"is a fraction of exchanges: at most 1, not {_show(value)}")


def check_choice(field: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidValue(field, f"must be one of {', '.join(choices)}, not {value!r}")


def _show(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
