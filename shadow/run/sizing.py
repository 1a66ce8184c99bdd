"""How many `--workers` a run gets when the flag is not given, and the sentence that says why.

One shadow process keeps about one core busy, so more processes help only when the cores
they would use are not the servers': with every target attached on another host, the
default is the CPUs this process may use, capped at MAX_AUTO_WORKERS; with any target
managed (started by shadow, so on this machine) or on a loopback address, it is 1, since
the servers take their share of the same cores. The CPUs usable are the fewer of the
scheduler's affinity mask (`taskset`, cpusets) and the cgroup's CPU quota (a container's
`--cpus`: cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the smallest
along the cgroup's path), rounded up: a quota of 1.5 CPUs is used best by 2 processes.
`--workers N` always wins.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from shadow.config.settings import RunSettings
from shadow.config.targets import TargetConfig
from shadow.errors import UsageError
from shadow.run.fleet import check_fleet

MAX_AUTO_WORKERS = 8  # more than this is asked for with --workers
CGROUP_ROOT = Path("/sys/fs/cgroup")


def size_workers(settings: RunSettings, given: int | None) -> RunSettings:
    """`settings` with `workers` decided (`given`: `--workers`, None when left out) and
    `workers_reason` saying how."""
    if given is not None:
        return dataclasses.replace(settings, workers=given, workers_reason="given by --workers")
    workers, reason = default_workers(settings.config.targets)
    if workers > 1 and (
        single := _one_process_only(dataclasses.replace(settings, workers=workers))
    ):
        workers, reason = 1, f"1: one process only ({single})"
    return dataclasses.replace(settings, workers=workers, workers_reason=reason)


def _one_process_only(settings: RunSettings) -> str | None:
    """Why a fleet would be refused (shadow.run.fleet.check_fleet), if it would."""
    try:
        check_fleet(settings)
    except UsageError as exc:
        return str(exc)
    return None


def default_workers(
    targets: Mapping[str, TargetConfig], cgroup_root: Path = CGROUP_ROOT
) -> tuple[int, str]:
    """The number of workers when `--workers` is not given, and why."""
    for name, target in targets.items():
        if target.managed:
            return 1, f"1: {name} is managed, so it runs on this machine's CPUs"
        if not _remote(target.host):
            return 1, f"1: {name} ({target.host}) is on this machine"
    cpus, why = usable_cpus(cgroup_root)
    workers = min(cpus, MAX_AUTO_WORKERS)
    cap = f", at most {MAX_AUTO_WORKERS}" if cpus > MAX_AUTO_WORKERS else ""
    return workers, f"{workers}: every target is on another host; {why}{cap}"


def _remote(host: str) -> bool:
    """True when every address `host` names is off loopback (False if it cannot be resolved:
    the safe default is one process)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and not any(_loopback(a) for a in addresses)


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """The CPUs this process can use (affinity and cgroup quota), and a phrase saying so."""
    affinity = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroup_root, _own_cgroups())
    if quota is not None and math.ceil(quota) < affinity:
        return math.ceil(quota), f"a cgroup CPU quota of {quota:g} CPUs ({affinity} CPUs usable)"
    limit = f"; the cgroup CPU quota is {quota:g} CPUs" if quota is not None else ""
    return affinity, f"{affinity} CPUs usable{limit}"


def _own_cgroups() -> list[str]:
    try:
        return Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []


def cgroup_cpu_quota(root: Path, lines: Iterable[str]) -> float | None:
    """The smallest CPU quota along this process's cgroups (in CPUs), None when unlimited.

    `lines` are /proc/self/cgroup's (`0::/path` for v2, `N:cpu,cpuacct:/path` for v1); in a
    container the path may not exist under `root` (its own namespace's root is mounted
    there), so the root itself is read too."""
    quotas: list[float] = []
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",")
        if controllers == "":
            quotas += [q for d in _dirs(root, path) if (q := _v2_quota(d)) is not None]
        elif "cpu" in names:
            for mount in {root / controllers, root / "cpu", root / "cpu,cpuacct"}:
                quotas += [q for d in _dirs(mount, path) if (q := _v1_quota(d)) is not None]
    return min(quotas, default=None)


def _dirs(root: Path, path: str) -> list[Path]:
    """`root/path` and each of its parents up to `root`."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    fields = _read(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    return _ratio(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:  # -1: no quota
        return None
    return quota_us / period_us


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
