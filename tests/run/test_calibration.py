"""Noise calibration end to end: real servers on 127.0.0.1, `shadow run` as a subprocess.

The labelled scenario: 240 exchanges against a legacy service with UUID and clock fields and a
candidate carrying known injected differences (tests/helpers/noisy_server.py `injected`).
False positives (a reported difference that was not injected) and false negatives (an injected
one not reported) are counted exactly; both must be 0, with a secondary, with the repeat of the
primary instead, and with the learned rules alone.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.noisy_server import injected
from tests.support import (
    NOISY_SERVER,
    ROOT,
    Shadow,
    assert_accounted,
    assert_no_orphans,
    run_shadow,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

NOISY = str(NOISY_SERVER)
PER_KIND = 120  # items and users: 240 exchanges in all
NOISE_PATHS = {"/request_id", "/generated_at", "/session", "/seen_at"}


def target(name: str, variant: str, tag: str) -> str:
    return f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{NOISY}", "--port", "{{port}}", "--variant", "{variant}",
           "--tag", "{tag}"]
health = {{ path = "/health", timeout_s = 15 }}
shutdown_grace_s = 2
"""


def noisy_config(tmp_path: Path, tag: str, secondary: bool, extra: str = "") -> Path:
    text = target("primary", "legacy", tag) + target("candidate", "candidate", tag)
    if secondary:
        text += target("secondary", "legacy", tag)
    path = tmp_path / ("with-secondary.toml" if secondary else "repeat.toml")
    path.write_text(text + "\n[replay]\nconcurrency = 8\n" + extra)
    return path


def scenario(tmp_path: Path) -> Path:
    records = []
    for n in range(PER_KIND):
        records.append({"method": "GET", "path": f"/items/{n}", "id": f"items-{n}"})
        records.append({"method": "GET", "path": f"/users/{n}", "id": f"users-{n}"})
    return write_jsonl(tmp_path / "labelled.jsonl", records)


def labelled(result: Shadow) -> tuple[int, int]:
    """(false positives, false negatives) of a run over the labelled scenario."""
    reported: dict[str, set[tuple[str, str]]] = {}
    for event in result.of("mismatch"):
        reported[event["id"]] = diff_set(event)
    false_positives = false_negatives = 0
    for n in range(PER_KIND):
        for kind in ("items", "users"):
            found, expected = reported.get(f"{kind}-{n}", set()), injected(kind, n)
            false_positives += len(found - expected)
            false_negatives += len(expected - found)
    return false_positives, false_negatives


def learned_rules(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    """Per learned block: each pattern and its rule (`ignore` or a normalizer)."""
    blocks = tomllib.loads(path.read_text())["compare"]["endpoint"]
    return {
        (b["name"], b["method"], b["path"]): {
            **dict.fromkeys(b.get("ignore", []), "ignore"),
            **b.get("normalize", {}),
        }
        for b in blocks
    }


VOLATILE = "volatile"
EXPECTED_RULES = {
    ("GET /items/{int}", "GET", "/items/{int}"): {
        "/generated_at": VOLATILE,
        "/request_id": VOLATILE,
    },
    ("GET /users/{int}", "GET", "/users/{int}"): {"/seen_at": VOLATILE, "/session": VOLATILE},
}


def test_labelled_scenario_with_a_secondary(tmp_path: Path, tag: str) -> None:
    config = noisy_config(tmp_path, tag, secondary=True)
    learned = tmp_path / "learned.toml"
    result = run_shadow(
        "run", "-c", str(config), "--emit", "all", "--learn-noise", str(learned),
        "--run-dir", str(tmp_path / "run"), str(scenario(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert labelled(result) == (0, 0)
    summary = result.summary
    assert summary["requests"] == 2 * PER_KIND and summary["errors"] == 0
    assert summary["calibration"] == calibrated("secondary")
    assert_accounted(summary)
    # The real change on the stable field is reported every time it is there.
    names = [e for e in result.of("mismatch") if ("/name", "value") in diff_set(e)]
    assert len(names) == sum(("/name", "value") in injected("items", n) for n in range(PER_KIND))
    # The UUID of every exchange was different, and suppressed: counted, and shown with --emit all.
    items = summary["by_endpoint"]["GET /items/{int}"]
    assert items["noise"]["/request_id"] >= PER_KIND - 3  # three lost it for real (injected)
    assert set(items["noise"]) <= NOISE_PATHS
    shown = [d for e in result.events if e["event"] in ("match", "mismatch") for d in e["diffs"]]
    suppressed = [d for d in shown if d.get("suppressed") == "noise"]
    assert len(suppressed) == summary["noise"] and {d["path"] for d in suppressed} <= NOISE_PATHS
    quiet = [e for e in result.of("match") if e.get("suppressed") == "noise"]
    assert quiet and all(d["suppressed"] == "noise" for e in quiet for d in e["diffs"])
    assert learned_rules(learned) == EXPECTED_RULES
    assert {e["target"] for e in result.of("server_ready")} == {"primary", "candidate", "secondary"}
    assert_no_orphans(tag)


def calibrated(mode: str) -> dict[str, Any]:
    """The calibration of the labelled scenario by default: every read of an endpoint until
    it has 20 pairs (`full_pairs`), then one in ten (`sample`), for each of the two."""
    pairs = 2 * (20 + (PER_KIND - 20) // 10)
    return {"mode": mode, "pairs": pairs, "discarded": 0, "body_not_comparable": []}


def diff_set(event: dict[str, Any]) -> set[tuple[str, str]]:
    """The differences an event reports as real (`--emit all` also lists suppressed ones)."""
    return {(d["path"], d["kind"]) for d in event["diffs"] if "suppressed" not in d}


def test_repeat_mode_finds_the_same_rules_and_they_work_alone(tmp_path: Path, tag: str) -> None:
    log = scenario(tmp_path)
    learned = tmp_path / "learned.toml"
    repeat = run_shadow(
        "run", "-c", str(noisy_config(tmp_path, tag, secondary=False)),
        "--learn-noise", str(learned), "--run-dir", str(tmp_path / "a"), str(log),
    )  # fmt: skip
    assert repeat.returncode == 1, repeat.stderr
    assert labelled(repeat) == (0, 0)
    assert repeat.summary["calibration"] == calibrated("repeat")
    assert learned_rules(learned) == EXPECTED_RULES
    # The learned file added to the config reproduces the result without any calibration.
    plain = noisy_config(tmp_path, tag, secondary=False, extra=learned.read_text())
    alone = run_shadow(
        "run", "-c", str(plain), "--no-calibration", "--run-dir", str(tmp_path / "b"), str(log)
    )
    assert labelled(alone) == (0, 0)
    assert alone.summary["noise"] == 0 and alone.summary["calibration"] is None
    assert alone.summary["mismatched"] == repeat.summary["mismatched"]
    assert_no_orphans(tag)


def test_refused_noise_is_reported_and_never_suppressed(tmp_path: Path, tag: str) -> None:
    log = write_jsonl(
        tmp_path / "odd.jsonl", [{"method": "GET", "path": f"/odd/{n}"} for n in range(6)]
    )
    learned = tmp_path / "learned.toml"
    config = noisy_config(tmp_path, tag, secondary=False)
    result = run_shadow(
        "run", "-c", str(config), "--concurrency", "1", "--learn-noise", str(learned),
        "--run-dir", str(tmp_path / "run"), str(log),
    )  # fmt: skip
    assert result.summary["noise"] == 0
    assert "not suppressed: a rule would hide a type change" in result.stderr
    assert "not suppressed: a rule would hide a whole object" in result.stderr
    text = learned.read_text()
    assert '# refused: "/nonce"' in text and '# refused: "/meta"' in text
    assert "compare" not in tomllib.loads(text)  # nothing learned, only comments


def test_calibration_is_on_unless_turned_off(fake_pair: tuple[str, str], tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "l.jsonl", [{"method": "GET", "path": "/items/1"}])
    primary, candidate = fake_pair
    attach = ("run", "--primary", primary, "--candidate", candidate)
    result = run_shadow(*attach, str(log))
    assert result.summary["calibration"] == {
        "mode": "repeat",
        "pairs": 1,
        "discarded": 0,
        "body_not_comparable": [],
    }
    assert run_shadow(*attach, "--no-calibration", str(log)).summary["calibration"] is None
    off = tmp_path / "off.toml"
    off.write_text(
        f'[targets.primary]\nurl = "{primary}"\n[targets.candidate]\nurl = "{candidate}"\n'
        "[noise]\nenabled = false\n"
    )
    assert run_shadow("run", "-c", str(off), str(log)).summary["calibration"] is None
    refused = run_shadow(
        *attach, "--no-calibration", "--learn-noise", str(tmp_path / "x"), str(log)
    )
    assert refused.returncode == 2 and "--no-calibration" in refused.stderr
    # --secondary attaches a second copy of the primary to calibrate against.
    result = run_shadow(*attach, "--secondary", primary, str(log))
    assert result.summary["calibration"]["mode"] == "secondary"
    assert result.summary["calibration"]["pairs"] == 1


def test_learn_noise_needs_an_existing_folder(tmp_path: Path) -> None:
    result = run_shadow("demo", "--learn-noise", str(tmp_path / "no" / "such" / "rules.toml"))
    assert result.returncode == 2 and "--learn-noise" in result.stderr and not result.stdout


def test_the_demo_with_calibration_learns_rules_that_reproduce_it(tmp_path: Path) -> None:
    learned = tmp_path / "learned.toml"
    result = run_shadow(
        "demo", "--emit", "all", "--learn-noise", str(learned), "--run-dir", str(tmp_path / "a")
    )
    assert result.returncode == 1, result.stderr
    assert demo_findings(result) == DEMO_BUGS
    assert result.summary["noise"] >= 7 and result.summary["calibration"]["mode"] == "repeat"
    rules = learned_rules(learned)
    assert len(rules) == 7
    for learned_paths in rules.values():
        [(pattern, rule)] = learned_paths.items()
        assert pattern.endswith("/last_score_timestamp") and rule == VOLATILE
    # The demo config without calibration, plus the learned file: the same two bugs.
    demo = (ROOT / "config" / "demo.toml").read_text()
    assert "last_score_timestamp" not in str(tomllib.loads(demo).get("compare"))  # no clock rule
    (tmp_path / "demo.env").write_text((ROOT / "config" / "demo.env").read_text())
    config = tmp_path / "demo.toml"
    config.write_text(demo.replace("enabled = true", "enabled = false") + learned.read_text())
    again = run_shadow(
        "run", "-c", str(config), "--run-dir", str(tmp_path / "b"),
        str(ROOT / "replay_logs" / "passport-demo.jsonl"),
    )  # fmt: skip
    assert again.returncode == 1, again.stderr
    assert demo_findings(again) == DEMO_BUGS
    assert again.summary["noise"] == 0 and again.summary["calibration"] is None
    assert (again.summary["matched"], again.summary["mismatched"]) == (11, 2)


DEMO_BUGS = {
    ("Check Bans", "/0/end_time", "value"),
    ("GTC Stake", "/items/0/last_updated_in_block", "type"),
    ("GTC Stake", "/items/1/last_updated_in_block", "type"),
}


def demo_findings(result: Shadow) -> set[tuple[str, str, str]]:
    return {
        (m["endpoint"], d["path"], d["kind"])
        for m in result.of("mismatch")
        for d in m["diffs"]
        if "suppressed" not in d
    }
