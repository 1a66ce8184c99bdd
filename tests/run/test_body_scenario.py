"""Bodies that are not JSON, compared structurally, end to end.

The labelled scenario: a fake service answering XML, HTML, plain text, url-encoded forms and
bytes (tests/helpers/body_server.py), each with a noisy part the config's rules ignore, and a
candidate that indents its markup and carries known differences. False positives (a reported
difference that was not injected) and false negatives (an injected one not reported) are
counted exactly; both must be 0, with those rules written by hand, and with calibration and
no rule (then with the rules it learned alone).

Before structural comparison every differing body was one `/` `body` difference (and
`line:1` was refused as a pattern): this scenario gave 48 false positives and 30 false
negatives.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.helpers.body_server import injected
from tests.support import ROOT, Shadow, assert_accounted, assert_no_orphans, run_shadow, write_jsonl

pytestmark = pytest.mark.e2e

BODIES = str(ROOT / "tests" / "helpers" / "body_server.py")
PER_KIND = 12
KINDS = ("xml", "html", "text", "form", "bin")

RULES = """
[[compare.endpoint]]
path = "/xml/{n}"
ignore = ["/order/@generated"]

[[compare.endpoint]]
path = "/html/{n}"
ignore = ["/html/head/meta[2]/@content"]

[[compare.endpoint]]
path = "/text/{n}"
ignore = ["line:1"]

[[compare.endpoint]]
path = "/form/{n}"
ignore = ["/token"]
"""


def config(tmp_path: Path, tag: str, rules: str) -> Path:
    text = ""
    for name, variant in (("primary", "legacy"), ("candidate", "candidate")):
        text += f"""
[targets.{name}]
url = "http://127.0.0.1:0"
command = ["{{python}}", "{BODIES}", "--port", "{{port}}", "--variant", "{variant}",
           "--tag", "{tag}"]
health = {{ path = "/health", timeout_s = 15 }}
shutdown_grace_s = 2
"""
    path = tmp_path / "bodies.toml"
    path.write_text(text + "\n[replay]\nconcurrency = 4\n" + rules)
    return path


def scenario(tmp_path: Path) -> Path:
    records = [
        {"method": "GET", "path": f"/{kind}/{n}", "id": f"{kind}-{n}"}
        for n in range(PER_KIND)
        for kind in KINDS
    ]
    return write_jsonl(tmp_path / "bodies.jsonl", records)


def labelled(result: Shadow) -> tuple[int, int]:
    """(false positives, false negatives) of a run over the labelled scenario."""
    reported = {
        e["id"]: {(d["path"], d["kind"]) for d in e["diffs"]} for e in result.of("mismatch")
    }
    false_positives = false_negatives = 0
    for kind in KINDS:
        for n in range(PER_KIND):
            found, expected = reported.get(f"{kind}-{n}", set()), injected(kind, n)
            false_positives += len(found - expected)
            false_negatives += len(expected - found)
    return false_positives, false_negatives


def test_markup_text_and_form_bodies_are_compared_by_structure(tmp_path: Path, tag: str) -> None:
    log = scenario(tmp_path)
    result = run_shadow(
        "run", "-c", str(config(tmp_path, tag, RULES)), "--run-dir", str(tmp_path / "run"),
        str(log), timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    print("counts:", labelled(result))
    assert labelled(result) == (0, 0)
    assert_accounted(result.summary)
    assert result.summary["errors"] == 0
    assert_no_orphans(tag)


def test_calibration_learns_the_noise_of_these_bodies_by_path(tmp_path: Path, tag: str) -> None:
    """No rule written: calibration finds the clock, the nonce and the token on their paths,
    and the learned rules alone, loaded back, decide the same."""
    log, learned = scenario(tmp_path), tmp_path / "learned.toml"
    calibrated = run_shadow(
        "run", "-c", str(config(tmp_path, tag, "\n[noise]\nenabled = true\n")),
        "--learn-noise", str(learned), "--run-dir", str(tmp_path / "a"), str(log), timeout=120,
    )  # fmt: skip
    assert calibrated.returncode == 1, calibrated.stderr
    assert labelled(calibrated) == (0, 0)
    # Fewer than [noise] full_pairs records per endpoint: every one is calibrated.
    calibration = calibrated.summary["calibration"]
    assert calibration["mode"] == "repeat" and calibration["pairs"] == len(KINDS) * PER_KIND
    rules = {
        pattern: rule
        for block in tomllib.loads(learned.read_text())["compare"]["endpoint"]
        for pattern, rule in block.get("normalize", {}).items()
    }
    assert rules == {
        "/order/@generated": "volatile",
        "/html/head/meta[2]/@content": "volatile",
        "line:1": "volatile",
        "/token": "volatile",
    }
    alone = run_shadow(
        "run", "-c", str(config(tmp_path, tag, learned.read_text())),
        "--no-calibration", "--run-dir", str(tmp_path / "b"), str(log), timeout=120,
    )  # fmt: skip
    assert labelled(alone) == (0, 0)
    assert alone.summary["calibration"] is None
    assert alone.summary["mismatched"] == calibrated.summary["mismatched"]
    assert_no_orphans(tag)
