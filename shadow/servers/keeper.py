"""A managed server's keeper: the process between shadow and the server, which ends every
descendant of the server when the server ends, when shadow asks, or when shadow dies.

Why a keeper, and not a parent-death signal set in the server:

- `PR_SET_PDEATHSIG` reaches only the process that set it, it is cleared in every child the
  server forks (the real server of `cargo run` or `manage.py runserver` is one), and it fires
  when the *thread* that forked dies, not the process. A daemon that double-forks and calls
  setsid() leaves both the group and the death signal behind.
- A pipe does not have those gaps. shadow holds the write end of the keeper's stdin; the kernel
  closes it when shadow's process ends, whatever ends it (SIGKILL, the OOM killer), and the
  keeper, reading end-of-file, KILLs everything it keeps. The keeper runs in its own session,
  so a signal to shadow's group or terminal never reaches it first.
- The keeper is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a descendant whose parent exits
  (the double fork) is re-parented to the keeper, never to init, so "every process below the
  keeper" is the server and all it started, however it detached. They are found in /proc.
- The server itself gets `PR_SET_PDEATHSIG` = SIGKILL towards the keeper, set in the keeper's
  only thread: should the keeper itself be KILLed, the server goes with it.

The server's output goes to the keeper's stderr (the log file), through the keeper when
shadow gives a `mask` (shadow.events.scrub builds it): the run's secret values, and the
patterns of a JWT and of a url's userinfo; each is written as `[REDACTED]`, line by line.

Protocol: shadow writes one JSON object on stdin (`argv`, `cwd`, `env`, `grace_s`, `mask`) and
keeps stdin open; the keeper answers one JSON line on stdout, `{"pid": N}` or `{"error": ...,
"filename": ...}` (then exits 127). SIGTERM: TERM every descendant outside the server's group
(shadow TERMs the group itself). SIGUSR1: KILL every descendant now. When the server (the
leader) exits, what it left is TERMed, given `grace_s`, then KILLed; then the keeper exits as
the server did (same code, or killed by the same signal), so shadow reads the server's status.

This file is run by path with `python -I -S`: the standard library only, nothing of shadow.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.02
KILL_ROUNDS = 500  # x POLL_S: how long a KILL sweep may take before the keeper gives up
LINE_LIMIT = 64 * 1024  # a longer line is masked and written in pieces
REDACTED = b"[REDACTED]"

_libc: Any = None
# Signals that would end the keeper (and orphan what it keeps) if left at their default.
_IGNORED_NAMES = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF")
IGNORED = [
    getattr(signal, n)
    for n in (*_IGNORED_NAMES, "SIGXCPU", "SIGIO", "SIGPWR")
    if hasattr(signal, n)
]


def prctl(option: int, value: int) -> bool:
    """Linux's prctl(2); False where it does not exist (the keeper then keeps the group)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return bool(_libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list[int]:
    """The live (non-zombie) processes below `root`, read from /proc."""
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    data = stat.read()
            except OSError:
                continue  # gone between the listing and the read
            # The command name is in parentheses and may hold anything: fields follow the last.
            fields = data[data.rindex(b")") + 2 :].split()
            pid = int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            if fields[0] != b"Z":
                live.add(pid)
    found, stack = [], list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        if pid in live:
            found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def send(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def outside_group(pids: list[int], pgid: int) -> list[int]:
    kept = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) != pgid:
                kept.append(pid)
    return kept


class LogFilter:
    """The server's output, masked line by line, to the keeper's stderr (the log file)."""

    def __init__(self, fd: int, mask: dict[str, Any]) -> None:
        self.fd = fd
        forms = {os.fsencode(v) for v in mask["values"]}
        self.values = sorted(forms, key=len, reverse=True)  # longest first: masked whole
        self.known = re.compile(b"|".join(re.escape(v) for v in self.values))
        self.jwt = re.compile(mask["jwt"].encode())
        self.userinfo = re.compile(mask["userinfo"].encode())
        self.pending = b""
        self.open = True

    def feed(self, block: bool = True) -> bool:
        """Read what is there; False at the end of the output (then all is written)."""
        try:
            data = os.read(self.fd, 1 << 16) if block else _read_nowait(self.fd)
        except BlockingIOError:
            return True
        if not data:
            self.open = False
            self.write(self.pending)
            self.pending = b""
            os.close(self.fd)
            return False
        self.pending += data
        cut = self.pending.rfind(b"\n") + 1
        if cut == 0 and len(self.pending) > LINE_LIMIT:
            cut = len(self.pending)
        if cut:
            self.write(self.pending[:cut])
            self.pending = self.pending[cut:]
        return True

    def write(self, data: bytes) -> None:
        view = memoryview(self.masked(data))
        with contextlib.suppress(OSError):  # a full disk: the output is lost, not the server
            while view:
                view = view[os.write(2, view) :]

    def masked(self, data: bytes) -> bytes:
        # Substring tests first: C-speed, and a line rarely holds anything.
        if self.values and any(v in data for v in self.values):
            data = self.known.sub(REDACTED, data)
        if b"eyJ" in data:
            data = self.jwt.sub(REDACTED, data)
        if b"://" in data:
            data = self.userinfo.sub(b"://" + REDACTED + b"@", data)
        return data

    def drain(self) -> None:
        """After every writer has ended: the rest of the output, then the end."""
        while self.open and self.feed(block=False):
            pass


def _read_nowait(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.set_blocking(fd, True)


class Keeper:
    """The keeper's state: its server, what was asked, and what the server exited with."""

    def __init__(self, grace_s: float) -> None:
        self.me = os.getpid()
        self.grace_s = grace_s
        self.leader = 0
        self.status: int | None = None  # the leader's wait status, once it has exited
        self.killing = False  # SIGUSR1 or shadow gone: KILL, no grace
        self.terming = False
        self.log: LogFilter | None = None
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD, *IGNORED):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _: object) -> None:
        if signum == signal.SIGUSR1:
            self.killing = True
        elif signum == signal.SIGTERM:
            self.terming = True
        # SIGCHLD: reaped in the loop. The others: not for the keeper, which must outlive its
        # server (a handler, not SIG_IGN, so that the server does not inherit them ignored).

    def spawn(self, config: dict[str, Any]) -> None:
        def die_with_keeper() -> None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != self.me:  # the keeper died before the line above
                os._exit(1)

        out_r, out = (os.pipe()) if config.get("mask") else (-1, 2)
        try:
            proc = subprocess.Popen(
                config["argv"],
                cwd=config.get("cwd"),
                env=config["env"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=die_with_keeper,  # noqa: PLW1509 - the keeper has one thread
            )
        except OSError as exc:
            report({"error": exc.strerror or str(exc), "filename": _text(exc.filename)})
            sys.exit(127)
        if out_r >= 0:
            os.close(out)  # the server's now: the end of output comes when its last copy closes
            self.log = LogFilter(out_r, config["mask"])
        self.leader = proc.pid
        proc.returncode = 0  # reaped by waitpid(-1) below, not by Popen
        report({"pid": proc.pid})

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.leader:
                self.status = status

    def wait(self, timeout_s: float | None) -> None:
        """Until a signal, shadow's end (stdin), or `timeout_s`; then reap what ended."""
        watched = [self.wake_r] if self.killing else [0, self.wake_r]
        log = self.log if self.log is not None and self.log.open else None
        if log is not None:
            watched.append(log.fd)
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(watched, [], [], timeout_s)
            if self.wake_r in readable:
                os.read(self.wake_r, 512)
            if 0 in readable and not os.read(0, 4096):
                self.killing = True  # shadow is gone
            if log is not None and log.fd in readable:
                log.feed()
        self.reap()

    def run(self) -> None:
        """Keep the server until it exits, passing on what shadow asks; then end the rest."""
        termed = False
        while self.status is None:
            if self.killing:
                self.kill_all()
                break
            if self.terming and not termed:
                termed = True
                send(outside_group(descendants(self.me), self.leader), signal.SIGTERM)
            self.wait(None)
        self.end_rest()

    def end_rest(self) -> None:
        """The leader has exited: TERM what it left, a grace, then KILL."""
        rest = descendants(self.me)
        if rest and not self.killing:
            send(rest, signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            while (rest := descendants(self.me)) and not self.killing:
                if time.monotonic() >= deadline:
                    break
                self.wait(POLL_S)
        self.kill_all()

    def kill_all(self) -> None:
        """KILL every descendant, again until none is left (a dying one may have forked)."""
        for _ in range(KILL_ROUNDS):
            rest = descendants(self.me)
            if not rest:
                break
            send(rest, signal.SIGKILL)
            self.reap()
            time.sleep(POLL_S)
        while self.status is None:  # the leader was KILLed above: its status is due
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == self.leader:
                self.status = status
        self.reap()

    def exit_as_server(self) -> None:
        status = self.status
        if status is not None and os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            with contextlib.suppress(OSError, ValueError):
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core of the keeper
            with contextlib.suppress(OSError, ValueError):  # SIGKILL has no disposition
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
            os.kill(self.me, signum)
            os._exit(128 + signum)
        code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else 1
        os._exit(code)


def report(message: dict[str, Any]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _text(value: object) -> str | None:
    return None if value is None else os.fsdecode(value) if isinstance(value, bytes) else str(value)


def read_config() -> dict[str, Any]:
    """One JSON object, length-prefixed (8 bytes, big-endian)."""
    chunks, size = [], None
    need = 8
    while need > 0:
        chunk = os.read(0, need)
        if not chunk:
            sys.exit(1)  # shadow died before sending it: nothing was started
        chunks.append(chunk)
        need -= len(chunk)
        if need == 0 and size is None:
            size = int.from_bytes(b"".join(chunks), "big")
            chunks, need = [], size
    config: dict[str, Any] = json.loads(b"".join(chunks))
    return config


def main() -> None:
    config = read_config()
    keeper = Keeper(float(config.get("grace_s", 5.0)))
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    keeper.spawn(config)
    keeper.run()
    if keeper.log is not None:
        keeper.log.drain()
    keeper.exit_as_server()


if __name__ == "__main__":
    main()
