"""Operations that share one route, told apart by a header or a JSON body member, end to end.

The labelled scenario: a fake RPC service with one route, `POST /` (tests/helpers/rpc_server.py),
whose operations are named by `X-Amz-Target` or by the JSON-RPC member `/method`. One
operation's array order is free (an `unordered` rule for it alone), another's is not; two have a
clock that calibration (repeat mode, reads marked `safe`) learns as noise for them alone; one is
a write that is never repeated. False positives (a reported difference that was not injected)
and false negatives (an injected one not reported) are counted exactly; both must be 0, with
calibration and with the learned rules alone.

Before endpoint identity the config below was refused (`match_header`: unknown key); the best
the old config could say (one block for `POST /`, `repeat_methods = ["POST"]`) gave 0 false
positives and 17 false negatives: the route-wide `unordered` hid every reordered queue (12) and
the clock noise learned for the route hid GetQueue's changed stamps (5).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.rpc_server import injected
from tests.support import ROOT, Shadow, assert_accounted, assert_no_orphans, run_shadow, write_jsonl

pytestmark = pytest.mark.e2e

RPC = str(ROOT / "tests" / "helpers" / "rpc_server.py")
PER_OP = 30
OPS = ("ListTags", "GetQueue", "PutItem", "stats.get")

RULES = """
[[compare.endpoint]]
name = "ListTags"
method = "POST"
path = "/"
match_header = { "X-Amz-Target" = "Store.ListTags" }
unordered = ["/items"]
safe = true

[[compare.endpoint]]
name = "GetQueue"
method = "POST"
path = "/"
match_header = { "X-Amz-Target" = "Store.GetQueue" }
safe = true

[[compare.endpoint]]
method = "POST"
path = "/"
match_body = { "/method" = "stats.get" }
safe = true
"""
# What a config could say before endpoints had an identity: one rule for the whole route.
RULES_BEFORE = """
[noise]
repeat_methods = ["POST"]

[[compare.endpoint]]
method = "POST"
path = "/"
unordered = ["/items"]
"""


def target(name: str, variant: str, tag: str) -> str:
    return f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{RPC}", "--port", "{{port}}", "--variant", "{variant}", "--tag", "{tag}"]
health = {{ path = "/health", timeout_s = 15 }}
shutdown_grace_s = 2
"""


def config(tmp_path: Path, tag: str, rules: str, name: str, calibrate: bool = True) -> Path:
    text = target("primary", "legacy", tag) + target("candidate", "candidate", tag)
    # One at a time: PutItem's version counts the writes each server saw, in order.
    text += f"\n[replay]\nconcurrency = 1\n\n[noise]\nenabled = {str(calibrate).lower()}\n"
    path = tmp_path / name
    path.write_text(text + rules.replace("[noise]\n", ""))
    return path


def record(op: str, n: int) -> dict[str, Any]:
    if op == "stats.get":
        body = {"jsonrpc": "2.0", "id": n, "method": op, "n": n}
        return {"method": "POST", "path": "/", "body": body, "id": f"{op}-{n}"}
    headers = [["X-Amz-Target", f"Store.{op}"], ["Content-Type", "application/x-amz-json-1.0"]]
    return {"method": "POST", "path": "/", "headers": headers, "body": {"n": n}, "id": f"{op}-{n}"}


def scenario(tmp_path: Path) -> Path:
    records = [record(op, n) for n in range(PER_OP) for op in OPS]
    return write_jsonl(tmp_path / "rpc.jsonl", records)


def labelled(result: Shadow) -> tuple[int, int]:
    """(false positives, false negatives) of a run over the labelled scenario."""
    reported = {
        e["id"]: {(d["path"], d["kind"]) for d in e["diffs"] if "suppressed" not in d}
        for e in result.of("mismatch")
    }
    false_positives = false_negatives = 0
    for op in OPS:
        for n in range(PER_OP):
            found, expected = reported.get(f"{op}-{n}", set()), injected(op, n)
            false_positives += len(found - expected)
            false_negatives += len(expected - found)
    return false_positives, false_negatives


def run(tmp_path: Path, config_path: Path, log: Path, *extra: str) -> Shadow:
    run_dir = tmp_path / f"run-{config_path.stem}"
    args = ("run", "-c", str(config_path), "--run-dir", str(run_dir), *extra, str(log))
    return run_shadow(*args, timeout=120)


def test_operations_on_one_route_keep_their_own_rules(tmp_path: Path, tag: str) -> None:
    log, learned = scenario(tmp_path), tmp_path / "learned.toml"
    calibrated = run(
        tmp_path, config(tmp_path, tag, RULES, "rpc.toml"), log, "--learn-noise", str(learned)
    )
    assert calibrated.returncode == 1, calibrated.stderr
    assert labelled(calibrated) == (0, 0)
    summary = calibrated.summary
    assert_accounted(summary)
    # Reads marked safe are repeated to the legacy; the write never is.
    # Each of the three reads: its first [noise] full_pairs (20) calibrated, then one in ten.
    assert summary["calibration"]["pairs"] == 3 * (20 + (PER_OP - 20) // 10)
    assert summary["calibration"]["mode"] == "repeat"
    endpoints = set(summary["by_endpoint"])
    assert endpoints == {
        "ListTags",
        "GetQueue",
        "POST / (/method=stats.get)",
        "POST / (X-Amz-Target=Store.PutItem)",
    }
    blocks = tomllib.loads(learned.read_text())["compare"]["endpoint"]
    learned_by = {(b["name"], str(b.get("match_header") or b.get("match_body"))): b for b in blocks}
    assert set(learned_by) == {
        ("ListTags", "{'X-Amz-Target': 'Store.ListTags'}"),
        ("POST / (/method=stats.get)", "{'/method': 'stats.get'}"),
    }
    assert all(b["method"] == "POST" and b["path"] == "/" for b in blocks)
    assert learned_by["ListTags", "{'X-Amz-Target': 'Store.ListTags'}"]["normalize"] == {
        "/stamp": "volatile"
    }
    # The learned rules alone, without calibration, decide the same.
    plain = config(tmp_path, tag, RULES + learned.read_text(), "alone.toml", calibrate=False)
    alone = run(tmp_path, plain, log)
    assert labelled(alone) == (0, 0)
    assert alone.summary["calibration"] is None and alone.summary["noise"] == 0
    assert alone.summary["mismatched"] == summary["mismatched"]
    assert_no_orphans(tag)


def test_the_route_wide_rules_before_endpoint_identity(tmp_path: Path, tag: str) -> None:
    """The same scenario with one rule for the route: what the old config could express."""
    result = run(tmp_path, config(tmp_path, tag, RULES_BEFORE, "before.toml"), scenario(tmp_path))
    # The route-wide `unordered` still hides every reordered queue, as it says; the noise is
    # now learned per operation (the inferred names carry X-Amz-Target), so the changed stamps
    # of GetQueue show (17 false negatives before).
    assert labelled(result) == (0, 12)
    assert "POST / (X-Amz-Target=Store.GetQueue)" in result.summary["by_endpoint"]
    assert_no_orphans(tag)
