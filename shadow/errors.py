"""The errors shadow reports to its user, each carrying the exit code it ends the run with.

    ShadowError                      exit_code
    ├── UsageError                   2  bad command line
    ├── ConfigError                  2  bad config file or key (names the file and key)
    ├── InputError                   2  a log that cannot be opened or is of no known format
    ├── PortInUseError               2  a managed target's port is taken before it starts
    ├── OutputError                  2  the events output or the run dir cannot be written
    └── TargetError                  3  a managed server failed to start or died
        ├── ServerStartError            never answered its health check, or exited while starting
        └── ServerExitedError           exited during the run

Anything else escaping the app is a bug; `cli` reports it as such with exit code 1... never a
traceback on a user error.
"""

from __future__ import annotations


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
