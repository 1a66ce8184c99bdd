"""The default `--workers`: the CPUs usable when every server is on another host, else 1."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from shadow.config.load import Config
from shadow.config.settings import RunSettings
from shadow.config.targets import Reset, TargetConfig
from shadow.run.sizing import (
    MAX_AUTO_WORKERS,
    cgroup_cpu_quota,
    default_workers,
    size_workers,
    usable_cpus,
)
from tests.support import FAKE_PAIR, assert_accounted, free_port, run_shadow, serving, write_jsonl

AFFINITY = len(os.sched_getaffinity(0))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


# --- the cgroup's CPU quota, read from a folder laid out as /sys/fs/cgroup -------------------


def test_v2_quota_is_the_smallest_along_the_path(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "max 100000")
    write(tmp_path / "kube" / "cpu.max", "300000 100000")
    write(tmp_path / "kube" / "pod" / "cpu.max", "150000 100000")
    write(tmp_path / "kube" / "pod" / "app" / "cpu.max", "max 100000")
    assert cgroup_cpu_quota(tmp_path, ["0::/kube/pod/app"]) == 1.5
    assert cgroup_cpu_quota(tmp_path, ["0::/kube"]) == 3.0


def test_v2_without_a_quota_is_none(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "max 100000")
    assert cgroup_cpu_quota(tmp_path, ["0::/"]) is None
    assert cgroup_cpu_quota(tmp_path / "absent", ["0::/a/b"]) is None


def test_v2_in_a_container_reads_its_own_root(tmp_path: Path) -> None:
    # The namespace's root is mounted at /sys/fs/cgroup: the host's path does not exist there.
    write(tmp_path / "cpu.max", "50000 100000")
    assert cgroup_cpu_quota(tmp_path, ["0::/docker/0123abc"]) == 0.5


def test_v1_quota_and_period(tmp_path: Path) -> None:
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1")
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000")
    write(tmp_path / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "200000")
    write(tmp_path / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "50000")
    lines = ["4:memory:/job", "2:cpu,cpuacct:/job", "1:name=systemd:/job"]
    assert cgroup_cpu_quota(tmp_path, lines) == 4.0
    assert cgroup_cpu_quota(tmp_path, ["2:cpu,cpuacct:/"]) is None  # -1: no quota


def test_v1_separate_cpu_mount(tmp_path: Path) -> None:
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "100000")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(tmp_path, ["1:cpu:/"]) == 1.0


def test_unreadable_lines_and_values_are_no_quota(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "lots 100000")
    assert cgroup_cpu_quota(tmp_path, ["garbage", "0::/"]) is None


def test_the_usable_cpus_are_the_fewer_of_affinity_and_quota(tmp_path: Path) -> None:
    assert usable_cpus(tmp_path) == (AFFINITY, f"{AFFINITY} CPUs usable")
    # This process's own cgroup lines are read; a quota at the root holds for every path.
    write(tmp_path / "cpu.max", "50000 100000")
    for controllers in ("cpu", "cpu,cpuacct"):
        write(tmp_path / controllers / "cpu.cfs_quota_us", "50000")
        write(tmp_path / controllers / "cpu.cfs_period_us", "100000")
    cpus, why = usable_cpus(tmp_path)
    assert cpus == 1 and why == f"a cgroup CPU quota of 0.5 CPUs ({AFFINITY} CPUs usable)"
    write(tmp_path / "cpu.max", f"{AFFINITY * 200000} 100000")
    for controllers in ("cpu", "cpu,cpuacct"):
        write(tmp_path / controllers / "cpu.cfs_quota_us", str(AFFINITY * 200000))
    cpus, why = usable_cpus(tmp_path)
    assert cpus == AFFINITY and why.endswith(f"the cgroup CPU quota is {AFFINITY * 2} CPUs")


# --- the targets decide whether the CPUs are shadow's ----------------------------------------


def target(name: str, url: str, *command: str) -> TargetConfig:
    return TargetConfig(name=name, url=url, command=command)


def test_a_managed_target_means_one_worker(tmp_path: Path) -> None:
    targets = {
        "primary": target("primary", "http://192.0.2.7:8000"),
        "candidate": target("candidate", "http://192.0.2.8:8000", "serve", "{port}"),
    }
    assert default_workers(targets, tmp_path) == (
        1,
        "1: candidate is managed, so it runs on this machine's CPUs",
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "[::1]", "localhost", "0.0.0.0"])
def test_a_local_target_means_one_worker(host: str, tmp_path: Path) -> None:
    targets = {
        "primary": target("primary", "http://192.0.2.7:8000"),
        "candidate": target("candidate", f"http://{host}:8000"),
    }
    workers, reason = default_workers(targets, tmp_path)
    assert workers == 1 and reason.startswith("1: candidate (") and "is on this machine" in reason


def test_remote_targets_get_the_usable_cpus_capped(tmp_path: Path) -> None:
    targets = {
        "primary": target("primary", "http://192.0.2.7:8000"),
        "candidate": target("candidate", "http://[2001:db8::1]:8000"),
    }
    expected = min(AFFINITY, MAX_AUTO_WORKERS)
    workers, reason = default_workers(targets, tmp_path)
    assert workers == expected
    assert reason.startswith(f"{expected}: every target is on another host; {AFFINITY} CPUs")
    write(tmp_path / "cpu.max", "2000000 100000")  # 20 CPUs: more than the cap, if usable
    for controllers in ("cpu", "cpu,cpuacct"):
        write(tmp_path / controllers / "cpu.cfs_quota_us", "2000000")
        write(tmp_path / controllers / "cpu.cfs_period_us", "100000")
    assert default_workers(targets, tmp_path)[0] == expected


@pytest.mark.skipif(AFFINITY < 2, reason="a fleet needs 2 usable CPUs to be the default")
@pytest.mark.parametrize("kind", ["metrics", "learn_noise", "stdin", "loop_with_reset"])
def test_what_a_fleet_cannot_share_keeps_the_default_at_one_process(kind: str) -> None:
    """Left to the default, a run a fleet would refuse gets one process and says why,
    rather than the refusal (exit 2) of a flag the user never gave."""
    reset = Reset(path="/reset") if kind == "loop_with_reset" else None
    targets = {
        name: TargetConfig(name=name, url=f"http://192.0.2.{n}:8000", reset=reset)
        for n, name in enumerate(("primary", "candidate"), start=7)
    }
    settings = RunSettings(
        config=Config(source="shadow.toml", targets=targets),
        inputs=["-" if kind == "stdin" else "log.jsonl"],
        loop=kind == "loop_with_reset",
        metrics=("127.0.0.1", 0) if kind == "metrics" else None,
        learn_noise="noise.toml" if kind == "learn_noise" else None,
    )
    assert (
        size_workers(
            dataclasses.replace(
                settings, inputs=["log.jsonl"], loop=False, metrics=None, learn_noise=None
            ),
            None,
        ).workers
        > 1
    )
    sized = size_workers(settings, None)
    assert sized.workers == 1
    assert sized.workers_reason.startswith("1: one process only (")


# --- a real run -------------------------------------------------------------------------------


def own_address() -> str | None:
    """An IPv4 address of this host that is not loopback, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


@contextlib.contextmanager
def pair_on(host: str) -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        urls = []
        for variant in ("primary", "candidate"):
            port = free_port()
            argv = [sys.executable, str(FAKE_PAIR), "--port", str(port), "--variant", variant]
            url = f"http://{host}:{port}"
            stack.enter_context(
                serving([*argv, "--host", host, "--tag", "sizing"], url + "/health")
            )
            urls.append(url)
        yield urls[0], urls[1]


def items_log(path: Path) -> Path:
    write_jsonl(path, [{"method": "GET", "path": f"/items/{n}", "id": f"r{n}"} for n in range(40)])
    return path


@pytest.mark.e2e
def test_servers_on_another_address_get_a_fleet_and_its_cpu_is_counted(tmp_path: Path) -> None:
    host = own_address()
    if host is None:
        pytest.skip("this host has no address but loopback")
    log = items_log(tmp_path / "log.jsonl")
    with pair_on(host) as (primary, candidate):
        args = ("--primary", primary, "--candidate", candidate, "--no-calibration", "-q")
        result = run_shadow("run", str(log), *args)
    expected = min(usable_cpus()[0], MAX_AUTO_WORKERS)
    settings = result.events[0]["settings"]
    assert settings["workers"] == expected, result.stderr
    assert settings["workers_reason"].startswith(f"{expected}: every target is on another host")
    summary = result.summary
    assert_accounted(summary)
    if expected == 1:
        assert "parent_cpu_s" not in summary
        return
    workers = summary["workers"]
    assert len(workers) == expected and all(w["cpu_s"] > 0 for w in workers)
    assert summary["parent_cpu_s"] > 0
    total = summary["parent_cpu_s"] + sum(w["cpu_s"] for w in workers)
    assert math.isclose(summary["cpu_s"], total, abs_tol=0.002)


@pytest.mark.e2e
def test_loopback_servers_get_one_process_and_given_workers_win(
    tmp_path: Path, fake_pair: tuple[str, str]
) -> None:
    primary, candidate = fake_pair
    log = items_log(tmp_path / "log.jsonl")
    args = ("run", str(log), "--primary", primary, "--candidate", candidate, "-q")
    one = run_shadow(*args)
    settings = one.events[0]["settings"]
    assert settings["workers"] == 1
    assert settings["workers_reason"] == "1: primary (127.0.0.1) is on this machine"
    assert one.summary["cpu_s"] > 0 and "parent_cpu_s" not in one.summary
    two = run_shadow(*args, "--workers", "2")
    settings = two.events[0]["settings"]
    assert (settings["workers"], settings["workers_reason"]) == (2, "given by --workers")
    assert len(two.summary["workers"]) == 2
