"""Process groups and ports: signal a group, list its live members, wait until it is gone;
pick a free port or check that one is free, as the server would bind it.

A member of a group whose parent has exited may linger as a zombie when PID 1 does not reap;
a zombie holds no resources, so "gone" means "absent or a zombie" here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket

import psutil

GROUP_POLL_S = 0.02


def free_port(host: str) -> int:
    family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind(address)
        port: int = sock.getsockname()[1]
        return port


def port_taken(host: str, port: int) -> bool:
    """Whether binding host:port fails as it would for the server (SO_REUSEADDR set)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # unresolvable: the health check will say so with more context
    for family, _, _, _, address in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                # Only "in use" counts; e.g. an IPv6 address on a host without IPv6 does not.
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def signal_group(pgid: int, signum: signal.Signals) -> bool:
    """Send `signum` to the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member changed its uid; nothing more we can do from here
    return True


def group_members(pgid: int) -> list[int]:
    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except (OSError, psutil.Error):
            continue  # gone between the listing and the look-up
    return members


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # killpg also succeeds while only zombies are left: ask psutil.
    return bool(group_members(pgid))


async def wait_group_gone(pgid: int, deadline: float) -> bool:
    loop = asyncio.get_running_loop()
    while group_alive(pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(GROUP_POLL_S)
    return True
