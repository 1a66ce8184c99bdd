"""`shadow report` end to end: event files from real runs in, text, JSON and HTML out."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow import cli
from shadow.report.diffview import Row, diff_rows, unified_excerpt
from shadow.report.series import MAX_POINTS, Point, Series, parse_ts, read_point
from tests.support import ROOT, Shadow, run_shadow, shadow_cmd, write_jsonl

# 45 items named by n % 3; the candidate answers n as a string when n % 5 == 0: three
# mismatches per endpoint, so every one of them is kept as an example.
ITEMS = [
    {"method": "GET", "path": f"/items/{n}", "name": f"items-{'abc'[n % 3]}", "id": f"i{n}"}
    for n in range(45)
]
SLOW = [{"method": "GET", "path": "/slow/3000", "name": "slow", "id": f"s{n}"} for n in range(2)]
TOP_KEYS = [
    "schema",
    "verdict",
    "totals",
    "statuses",
    "both_failed",
    "body_not_comparable",
    "targets",
    "runs",
    "inputs",
    "malformed_lines",
    "latency_ms",
    "endpoints",
    "top_diffs",
    "input_errors",
    "other_events",
    "warnings",
    "progress",
]


def make_demo_events(folder: Path, *extra: str) -> Path:
    """Events of a real `shadow demo --emit all` run, as a file."""
    out = folder / "demo.ndjson"
    result = run_shadow(
        "demo", "--emit", "all", "--output", str(out), "--run-dir", str(folder / "run"), *extra
    )
    assert result.returncode == 1, result.stderr  # the two seeded bugs
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_events(tmp_path_factory.mktemp("demo"))


def events_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def report(capsysbinary: pytest.CaptureFixture[bytes]) -> Callable[..., tuple[int, bytes, str]]:
    """`shadow report ARGS` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, bytes, str]:
        code = cli.main(["report", *args])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    return run


def as_json(report: Callable[..., tuple[int, bytes, str]], *args: str) -> dict[str, Any]:
    code, out, err = report("--json", *args)
    assert code == 0, err
    data: dict[str, Any] = orjson.loads(out)
    return data


def example_keys(data: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {
        (name, ex["run_id"], ex["seq"])
        for name, ep in data["endpoints"].items()
        for diff in ep["diffs"].values()
        for ex in diff["examples"]
    }


def mismatch_keys(*files: Path) -> set[tuple[str, str, int]]:
    return {
        (e["endpoint"], e["run_id"], e["seq"])
        for f in files
        for e in events_of(f)
        if e["event"] == "mismatch"
    }


def run_items(
    tmp_path: Path, pair: tuple[str, str], name: str, records: list[dict[str, Any]], *extra: str
) -> Path:
    log = write_jsonl(tmp_path / f"{name}.jsonl", records)
    out = tmp_path / f"{name}.ndjson"
    result: Shadow = run_shadow(
        "run",
        "--primary",
        pair[0],
        "--candidate",
        pair[1],
        "--emit",
        "all",
        "--output",
        str(out),
        *extra,
        str(log),
    )
    assert result.returncode == 1, result.stderr
    return out


# --- the demo ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_demo_report_json_has_the_runs_counts_and_both_bugs(
    demo: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    data = as_json(report, str(demo))
    finished = events_of(demo)[-1]
    assert list(data) == TOP_KEYS
    assert data["verdict"]["status"] == "fail"
    for key in ("requests", "matched", "mismatched", "errors", "input_errors", "noise"):
        assert data["totals"][key] == finished[key]
    assert (data["totals"]["requests"], data["totals"]["mismatched"]) == (13, 2)
    assert [r["run_id"] for r in data["runs"]] == [finished["run_id"]]
    assert set(data["endpoints"]) == set(finished["by_endpoint"])
    for name, ep in data["endpoints"].items():
        for key in ("requests", "matched", "mismatched", "errors"):
            assert ep[key] == finished["by_endpoint"][name][key], (name, key)
        assert ep["latency_source"] == "events"
        assert ep["latency_ms"]["primary"]["count"] == ep["requests"]
    # Sorted by impact: the two endpoints with a bug come first.
    assert list(data["endpoints"])[:2] == ["Check Bans", "GTC Stake"]
    gtc = data["endpoints"]["GTC Stake"]["diffs"]
    assert list(gtc) == ["/items/*/last_updated_in_block"]
    assert gtc["/items/*/last_updated_in_block"]["count"] == 2
    assert gtc["/items/*/last_updated_in_block"]["exchanges"] == 1
    assert gtc["/items/*/last_updated_in_block"]["kinds"] == {"type": 2}
    diffs = gtc["/items/*/last_updated_in_block"]["examples"][0]["diffs"]
    assert (diffs[0]["primary"], diffs[0]["candidate"]) == (12345678, "12345678")
    bans = data["endpoints"]["Check Bans"]["diffs"]["/*/end_time"]["examples"][0]["diffs"][0]
    assert bans["primary"] == "2025-06-01T10:02:39.584Z"
    assert bans["candidate"] == "2025-06-01T10:02:39.584855Z"
    assert example_keys(data) == mismatch_keys(demo)
    assert data["latency_ms"]["source"] == "events"
    assert data["latency_ms"]["targets"]["candidate"]["count"] == 13


@pytest.mark.e2e
def test_demo_report_text_fits_100_columns_and_shows_each_bug(demo: Path) -> None:
    result = run_shadow("report", str(demo))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "13 requests: 11 matched, 2 mismatched, 0 errors, 0 input errors" in text
    rows = {line.split("  ")[0]: line.split() for line in text.splitlines()}
    assert rows["Check Bans"][2:7] == ["1", "1", "100%", "0", "0"]
    assert rows["GTC Stake"][2:7] == ["1", "1", "100%", "0", "0"]
    assert rows["all"][1:5] == ["13", "2", "15%", "0"]
    # worst mismatch rate first
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("endpoint")) + 1
    assert [line.split("  ")[0] for line in lines[first : first + 2]] == [
        "Check Bans",
        "GTC Stake",
    ]
    assert "GTC Stake /items/*/last_updated_in_block  type" in text
    assert "primary 12345678 " in text and 'candidate "12345678"' in text
    assert 'candidate "2025-06-01T10:02:39.584855Z"' in text
    assert "e.g. seq 2 id r-03: POST /internal/check-bans" in text


@pytest.mark.e2e
def test_demo_report_html_is_self_contained_with_examples_and_plots(
    demo: Path, tmp_path: Path
) -> None:
    html_path = tmp_path / "report.html"
    result = run_shadow("report", str(demo), "--html", str(html_path))
    assert f"shadow: HTML report written to {html_path}" in result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"shadow report: FAIL")  # the text summary still prints
    page = html_path.read_text()
    assert "<script" not in page and 'http-equiv="Content-Security-Policy"' in page
    assert "src=" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") >= 1 and 'id="endpoints"' in page
    for anchor in ('href="#ep-0"', 'id="ep-0"', 'href="#ep-12"', 'id="ep-12"'):
        assert anchor in page
    assert "&quot;2025-06-01T10:02:39.584<mark>855</mark>Z&quot;" in page
    assert "<mark>&quot;12345678&quot;</mark>" in page
    primary = next(e["url"] for e in events_of(demo) if e.get("target") == "primary")
    assert '<pre class="curl">curl -sS' in page and "/internal/check-bans" in page
    assert f"set TARGET to the server to ask (this run&#x27;s primary: {primary})" in page
    assert "/score/last_score_timestamp" in page  # learned noise, listed per endpoint
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.e2e
def test_mismatches_only_events_fall_back_to_the_summary_latency(
    demo: Path, tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    thin = tmp_path / "thin.ndjson"
    thin.write_bytes(
        b"".join(orjson.dumps(e) + b"\n" for e in events_of(demo) if e["event"] != "match")
    )
    data = as_json(report, str(thin))
    assert data["totals"]["requests"] == 13 and data["totals"]["matched"] == 11
    assert data["endpoints"]["Allow List"]["matched"] == 1
    assert data["latency_ms"]["source"] == "summary"
    expected = events_of(demo)[-1]["latency_ms"]["primary"]["p99"]
    assert data["latency_ms"]["targets"]["primary"]["p99"] == expected
    assert example_keys(data) == mismatch_keys(demo)


@pytest.mark.e2e
def test_a_run_without_run_finished_is_counted_from_its_events(
    demo: Path, tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    cut = tmp_path / "cut.ndjson"
    cut.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events_of(demo)[:-1]))
    data = as_json(report, str(cut))
    assert data["verdict"]["status"] == "incomplete"
    assert data["totals"]["requests"] == 13 and data["totals"]["mismatched"] == 2
    assert data["runs"][0]["finished"] is False
    assert any("has no run_finished" in w for w in data["warnings"])


# --- inputs: malformed lines, empty files, .gz, stdin, duplicates ---------------------------


@pytest.mark.e2e
def test_malformed_lines_are_counted_and_reported_never_fatal(
    demo: Path, tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    lines = demo.read_bytes().splitlines()
    bad = [b"not json", b"[1, 2]", b'{"no_event": true}', lines[3][:40]]
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_bytes(
        b"\n".join([lines[0], bad[0], *lines[1:3], bad[1], bad[2], *lines[3:], bad[3]])
    )
    data = as_json(report, str(mixed))
    assert data["malformed_lines"] == 4
    assert data["inputs"][0]["malformed_lines"] == [2, 5, 6, len(lines) + 4]
    assert data["totals"]["requests"] == 13 and example_keys(data) == mismatch_keys(demo)
    words = " ".join(report(str(mixed))[1].decode().split())
    assert f"4 malformed line(s) skipped (2, 5, 6, {len(lines) + 4})" in words


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty, no events"),
        (b"\n\n", "empty, no events"),
        (b'{"method": "GET", "path": "/x"}\n' * 3, "not a shadow events file"),
        (b"hello\n", "not a shadow events file"),
    ],
)
def test_an_empty_or_non_event_file_is_exit_2_naming_it(
    tmp_path: Path,
    demo: Path,
    content: bytes,
    says: str,
    report: Callable[..., tuple[int, bytes, str]],
) -> None:
    empty = tmp_path / "nothing.ndjson"
    empty.write_bytes(content)
    code, out, err = report(str(demo), str(empty))
    assert code == 2 and out == b""
    assert str(empty) in err and says in err


@pytest.mark.e2e
def test_the_command_line_reads_no_events_as_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.touch()
    result = run_shadow("report", "--json", str(empty))
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr == f"shadow: error: {empty}: empty, no events to report on\n"


def test_missing_inputs_are_exit_2(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    code, _, err = report(str(tmp_path / "gone.ndjson"))
    assert code == 2 and "gone.ndjson: cannot read" in err
    code, _, err = report(str(tmp_path))
    assert code == 2 and "is a directory" in err


@pytest.mark.e2e
def test_an_html_file_that_cannot_be_written_is_exit_2(
    demo: Path, tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    target = tmp_path / "no-such-folder" / "r.html"
    code, out, err = report(str(demo), "--html", str(target))
    assert code == 2 and out == b""
    assert err.startswith(f"shadow: error: {target}: cannot write the report")


@pytest.mark.e2e
def test_gz_and_stdin_read_like_a_plain_file(
    demo: Path, tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    packed = tmp_path / "demo.ndjson.gz"
    packed.write_bytes(gzip.compress(demo.read_bytes()))
    plain, from_gz = as_json(report, str(demo)), as_json(report, str(packed))
    piped = run_shadow("report", "--json", "-", stdin=demo.read_bytes())
    assert piped.returncode == 0, piped.stderr
    from_stdin = orjson.loads(piped.stdout)
    for other in (from_gz, from_stdin):
        assert other["totals"] == plain["totals"] and other["endpoints"] == plain["endpoints"]
    assert from_stdin["inputs"][0]["path"] == "<stdin>"


@pytest.mark.e2e
def test_the_same_run_given_twice_is_counted_once(
    demo: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    data = as_json(report, str(demo), str(demo))
    assert data["totals"]["requests"] == 13 and len(data["runs"]) == 1
    assert any("appears more than once" in w for w in data["warnings"])


@pytest.mark.e2e
def test_a_closed_stdout_ends_quietly(demo: Path, tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            shadow_cmd("report", str(demo)), cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr
        )
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone before the report is written
        assert proc.wait(timeout=30) == 0
    assert errors.read_text() == ""


@pytest.mark.e2e
def test_html_without_matplotlib_says_what_to_install(demo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n"
    )
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "shadow", "report", str(demo), "--html", str(out)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={"PYTHONPATH": str(blocker.parent), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == (
        "shadow: error: shadow report --html needs matplotlib, which is not installed: "
        "pip install 'shadow-replay[report]' (or: pip install matplotlib)"
    )
    assert not out.exists() and proc.stdout == b""


# --- synthetic multi-endpoint runs against the fake servers ---------------------------------


@pytest.mark.e2e
def test_synthetic_run_exact_counts_every_example_errors_and_progress(
    fake_pair: tuple[str, str], tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    events = run_items(
        tmp_path,
        fake_pair,
        "items",
        ITEMS + SLOW,
        "--timeout",
        "0.5",
        "--rate",
        "60",
        "--progress-interval",
        "0.2",
    )
    data = as_json(report, str(events))
    expected = {
        name: {"requests": 15, "mismatched": 3, "errors": 0}
        for name in ("items-a", "items-b", "items-c")
    }
    expected["slow"] = {"requests": 2, "mismatched": 0, "errors": 2}
    for name, counts in expected.items():
        ep = data["endpoints"][name]
        assert {k: ep[k] for k in counts} == counts, name
    assert data["totals"]["requests"] == 47 and data["totals"]["mismatched"] == 9
    assert data["endpoints"]["items-a"]["diffs"]["/n"]["kinds"] == {"type": 3}
    assert example_keys(data) == mismatch_keys(events)
    slow = data["endpoints"]["slow"]["errors_by_kind"]["timeout"]
    assert slow["count"] == 2 and slow["sides"] == {"both": 2}
    assert data["progress"], "a 1 s run at --progress-interval 0.2 has progress events"
    text = report(str(events))[1].decode()
    assert "items-a                    15          3  20%      0" in text
    assert "slow timeout (both 2)" in text
    html = tmp_path / "items.html"
    assert report(str(events), "--html", str(html))[0] == 0
    page = html.read_text()
    assert 'id="over-time"' in page
    # The overall curve, the over-time panels, and one curve per items endpoint.
    assert page.count("<svg") == 5


@pytest.mark.e2e
def test_sharded_runs_merge_and_add_up(
    fake_pair: tuple[str, str], tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    first = run_items(tmp_path, fake_pair, "shard-0", ITEMS[:20])
    second = run_items(tmp_path, fake_pair, "shard-1", ITEMS[20:])
    merged = as_json(report, str(first), str(second))
    parts = [as_json(report, str(first)), as_json(report, str(second))]
    run_ids = [events_of(f)[0]["run_id"] for f in (first, second)]
    assert [r["run_id"] for r in merged["runs"]] == run_ids
    for key, value in merged["totals"].items():
        assert value == parts[0]["totals"][key] + parts[1]["totals"][key], key
    assert merged["totals"]["requests"] == 45 and merged["totals"]["mismatched"] == 9
    for name, ep in merged["endpoints"].items():
        for key in ("requests", "matched", "mismatched", "errors"):
            assert ep[key] == sum(p["endpoints"][name][key] for p in parts), (name, key)
        assert ep["latency_ms"]["primary"]["count"] == ep["requests"]
    assert example_keys(merged) == mismatch_keys(first, second)
    text = report(str(first), str(second))[1].decode()
    assert all(f"run {run_id}: " in text for run_id in run_ids)
    assert "45 requests: 36 matched, 9 mismatched" in text


# --- hostile and odd events -----------------------------------------------------------------

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def hostile_events(path: Path) -> Path:
    run = {"run_id": 'r"1<b>', "ts": "2026-01-01T00:00:00.000Z"}
    request = {
        "method": "GET",
        "path": "/x?q=" + HOSTILE,
        "headers": [["Authorization", "[REDACTED]"], ["X-Evil", HOSTILE]],
    }
    diffs = [
        {
            "path": "/" + HOSTILE,
            "kind": "value",
            "primary": HOSTILE,
            "candidate": "</td>" + HOSTILE,
        },
        {"path": "header:" + HOSTILE, "kind": "header", "primary": "a", "candidate": HOSTILE},
    ]
    events = [
        {"event": "run_started", **run, "targets": {HOSTILE: {"url": HOSTILE}}, "sources": [HOSTILE]},
        *(
            {
                "event": "mismatch",
                **run,
                "seq": i,
                "id": HOSTILE,
                "endpoint": HOSTILE,
                "request": request,
                "status": {"primary": 200, "candidate": 200},
                "latency_ms": {"primary": 1.0 + i, "candidate": 2.0 + i, HOSTILE: 3.0},
                "diffs": diffs,
            }
            for i in range(6)
        ),
        {"event": "error", **run, "seq": 6, "endpoint": HOSTILE, "request": request,
         "status": {}, "latency_ms": {}, "side": HOSTILE, "error": HOSTILE, "message": HOSTILE},
        {"event": "input_error", **run, "source": HOSTILE, "line": 1, "message": HOSTILE},
        {"event": "server_exited", **run, "target": HOSTILE, "returncode": 1, "expected": False,
         "log_tail": [HOSTILE]},
        {"event": HOSTILE, **run},
    ]  # fmt: skip
    write_jsonl(path, events)
    return path


def test_html_escapes_everything_taken_from_events(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    events = hostile_events(tmp_path / "hostile.ndjson")
    out = tmp_path / "hostile.html"
    code, _, err = report(str(events), "--html", str(out))
    assert code == 0, err
    page = out.read_text()
    assert "<script" not in page and "<img" not in page and "</td><script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;Authorization: $AUTHORIZATION&quot;" in page and "[REDACTED]" not in page
    code, out, _ = report(str(events))
    assert code == 0 and max(len(line) for line in out.decode().splitlines()) <= 100


def test_json_that_orjson_refuses_is_still_read(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    # A lone surrogate escape is JSON that orjson refuses; NaN is no JSON at all.
    line = (
        b'{"event": "mismatch", "run_id": "r", "seq": [1], "endpoint": "E\\ud800", '
        b'"request": {}, "diffs": [{"path": "/n", "kind": "value", "primary": "\\udfff", '
        b'"candidate": 2}]}\n'
    )
    events = tmp_path / "odd.ndjson"
    events.write_bytes(line + b'{"event": "match", "run_id": "r", "latency_ms": NaN}\n')
    code, out, err = report("--json", str(events))
    assert code == 0, err
    data = json.loads(out)  # the surrogate is written back as its escape, as it came
    assert data["malformed_lines"] == 1
    assert data["totals"]["mismatched"] == 1 and list(data["endpoints"]) == ["E\ud800"]
    example = data["endpoints"]["E\ud800"]["diffs"]["/n"]["examples"][0]
    assert example["diffs"][0]["primary"] == "\udfff" and example["seq"] == [1]
    code, out, _ = report(str(events), "--html", str(tmp_path / "odd.html"))
    assert code == 0 and b"E?" in out
    assert "E?" in (tmp_path / "odd.html").read_text()


def test_examples_past_the_first_three_are_folded(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    run = {"run_id": "r", "ts": "2026-01-01T00:00:00.000Z"}
    mismatches = [
        {
            "event": "mismatch",
            **run,
            "seq": i,
            "endpoint": "E",
            "request": {"method": "GET", "path": f"/e/{i}"},
            "diffs": [{"path": f"/{'ab'[i // 4]}", "kind": "value", "primary": 1, "candidate": 2}],
        }
        for i in range(8)
    ]
    out = tmp_path / "folded.html"
    assert report(str(write_jsonl(tmp_path / "e.ndjson", mismatches)), "--html", str(out))[0] == 0
    page = out.read_text()
    assert page.count('<div class="example"') == 6  # three kept per path
    assert page.count("<details><summary>3 more examples</summary>") == 1
    assert page.index("<details>") < page.index('id="ep-0-ex-3"')


def test_text_keeps_control_characters_from_the_terminal(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    run = {"run_id": "r", "ts": "2026-01-01T00:00:00.000Z"}
    name = "evil\x1b[2J\r\nname\x9b"
    match = {"event": "match", **run, "seq": 0, "endpoint": name, "request": {}}
    code, out, _ = report(str(write_jsonl(tmp_path / "ctl.ndjson", [match])))
    text = out.decode()
    assert code == 0 and "\x1b" not in text and "\x9b" not in text and "\r" not in text
    assert "evil\ufffd[2J name\ufffd" in text


def test_events_without_a_curl_field_get_one_with_placeholders(
    tmp_path: Path, report: Callable[..., tuple[int, bytes, str]]
) -> None:
    run = {"run_id": "old", "ts": "2026-01-01T00:00:00.000Z"}
    request = {
        "method": "POST",
        "path": "/a",
        "headers": [["Authorization", "[REDACTED]"], ["X-Trace", "t"]],
        "body": {"k": 1},
    }
    mismatch = {
        "event": "mismatch",
        **run,
        "seq": 0,
        "endpoint": "A",
        "request": request,
        "status": {"primary": 200, "candidate": 200},
        "latency_ms": {"primary": 1.0, "candidate": 1.0},
        "diffs": [{"path": "/k", "kind": "value", "primary": 1, "candidate": 2}],
    }
    events = write_jsonl(tmp_path / "old.ndjson", [mismatch])
    example = as_json(report, str(events))["endpoints"]["A"]["diffs"]["/k"]["examples"][0]
    assert example["curl"] == (
        'curl -sS -g --path-as-is -X POST "$TARGET"/a -H "Authorization: $AUTHORIZATION" '
        "-H 'X-Trace: t' -H 'Content-Type: application/json' --data-binary '{\"k\":1}'"
    )


def test_side_by_side_rows_line_up_both_answers() -> None:
    rows = diff_rows(
        [
            {"path": "status", "kind": "status", "primary": 200, "candidate": 500},
            {"path": "/items/2/price", "kind": "type", "primary": 2, "candidate": "2"},
            {"path": "/items/3/tags", "kind": "missing", "primary": ["a", "b"], "candidate": None},
            {"path": "/new", "kind": "extra", "primary": None, "candidate": True},
        ]
    )
    assert rows == [
        Row("status: 200", "status: 500", changed=True, kind="status"),
        Row("{", "{"),
        Row('  "items": [', '  "items": ['),
        Row("    …", "    …"),
        Row("    {", "    {"),
        Row('      "price": 2', '      "price": "2"', changed=True, kind="type"),
        Row("    }", "    }"),
        Row("    {", "    {"),
        Row('      "tags": [', None, changed=True, kind="missing"),
        Row('                "a",', None, changed=True),
        Row('                "b"', None, changed=True),
        Row("              ]", None, changed=True),
        Row("    }", "    }"),
        Row("  ]", "  ]"),
        Row(None, '  "new": true', changed=True, kind="extra"),
        Row("}", "}"),
    ]


def test_progress_fields_are_read_defensively_and_kept_bounded() -> None:
    started = parse_ts("2026-01-01T00:00:00.000Z")
    event = {
        "ts": "2026-01-01T00:00:05.000Z",
        "requests": 10,
        "matched": 9,
        "targets": {"primary": {"rss_bytes": 1024}, "candidate": "?"},
        "rss_mb": {"candidate": 2},
        "shadow": {"rss_kb": 3},
        "latency_ms": {"primary": {"p99": 4.5}, "candidate": {}},
    }
    assert read_point(event, started) == Point(
        5.0,
        sent=10.0,
        matched=9.0,
        rss_bytes={"primary": 1024.0, "candidate": 2.0 * 2**20, "shadow": 3072.0},
        p99_ms={"primary": 4.5},
    )
    assert read_point({"rate": 1}, None) is None  # no time to put it at
    series = Series()
    for i in range(10 * MAX_POINTS):
        series.add(Point(float(i)))
    assert MAX_POINTS // 2 <= len(series.points) < MAX_POINTS
    assert series.points[0].elapsed_s == 0.0
    gaps = {b.elapsed_s - a.elapsed_s for a, b in itertools.pairwise(series.points)}
    assert len(gaps) == 1  # evenly thinned


def test_the_lines_of_a_text_body_are_also_a_unified_excerpt() -> None:
    diffs = [
        {"path": "status", "kind": "status", "primary": 200, "candidate": 500},
        {"path": "line:3", "kind": "value", "primary": "packed", "candidate": "shipped"},
        {"path": "line:4", "kind": "missing", "primary": "items: 2", "candidate": None},
        {"path": "line:9", "kind": "extra", "primary": None, "candidate": "gift: yes"},
    ]
    assert unified_excerpt(diffs) == [
        "@@ line 3 @@",
        "-packed",
        "+shipped",
        "-items: 2",
        "@@ line 9 @@",
        "+gift: yes",
    ]
    assert unified_excerpt([{"path": "/a", "kind": "value", "primary": 1, "candidate": 2}]) == []
    # Side by side too: the rows pair each line's two sides.
    [_, row, *_] = diff_rows(diffs)
    assert row == Row('line:3: "packed"', 'line:3: "shipped"', changed=True, kind="value")


def _finished(by_endpoint: dict[str, tuple[int, int]]) -> dict[str, Any]:
    endpoints = {
        name: {
            "requests": requests,
            "matched": requests - mismatched,
            "mismatched": mismatched,
            "errors": 0,
            "diffs": {"/x": mismatched} if mismatched else {},
            "noise": {},
        }
        for name, (requests, mismatched) in by_endpoint.items()
    }
    requests = sum(r for r, _ in by_endpoint.values())
    mismatched = sum(m for _, m in by_endpoint.values())
    return {
        "event": "run_finished",
        "ts": "2026-01-01T00:00:01.000Z",
        "run_id": "r1",
        "requests": requests,
        "matched": requests - mismatched,
        "mismatched": mismatched,
        "errors": 0,
        "input_errors": 0,
        "skipped": 0,
        "noise": 0,
        "by_endpoint": endpoints,
        "exit_code": 1,
    }


def test_endpoints_rank_by_mismatch_rate_with_a_rate_column(tmp_path: Path) -> None:
    from shadow.report import aggregate_files
    from shadow.report.text import render_text

    started = {"event": "run_started", "ts": "2026-01-01T00:00:00.000Z", "run_id": "r1"}
    finished = _finished({"busy": (400, 12), "always": (2, 2), "fine": (50, 0)})
    path = write_jsonl(tmp_path / "events.ndjson", [started, finished])
    data = aggregate_files([str(path)]).data
    assert list(data["endpoints"]) == ["always", "busy", "fine"]  # 100 %, 3 %, 0 %
    assert [ep["mismatch_rate"] for ep in data["endpoints"].values()] == [1.0, 0.03, 0.0]
    rows = {line.split()[0]: line.split()[1:5] for line in render_text(data).splitlines()[6:11]}
    assert rows["always"] == ["2", "2", "100%", "0"]
    assert rows["busy"] == ["400", "12", "3.0%", "0"]
    assert rows["all"] == ["452", "14", "3.1%", "0"]


@pytest.mark.e2e
def test_a_record_replayed_twice_is_one_example(tmp_path: Path) -> None:
    from shadow.report import aggregate_files

    log = str(ROOT / "replay_logs" / "passport-demo.jsonl")
    out = tmp_path / "twice.ndjson"
    config = str(ROOT / "config" / "demo.toml")
    result = run_shadow(
        "run", "-c", config, log, log, "--output", str(out), "--run-dir", str(tmp_path)
    )
    assert result.returncode == 1, result.stderr
    diffs = aggregate_files([str(out)]).data["endpoints"]["Check Bans"]["diffs"]["/*/end_time"]
    assert diffs["exchanges"] == 2  # both replays counted...
    assert [e["id"] for e in diffs["examples"]] == ["r-03"]  # ...shown once


def test_a_latency_ratio_is_painted_only_when_the_difference_is_large_too() -> None:
    from shadow.report.html import SIGNIFICANT_MS, _ratio_cell

    assert _ratio_cell(2.0, 0.4, 0.8) == '<td class="">2.00</td>'  # twice as slow, 0.4 ms
    assert _ratio_cell(2.0, 10.0, 20.0) == '<td class="slower">2.00</td>'
    assert _ratio_cell(0.5, 20.0, 10.0) == '<td class="faster">0.50</td>'
    assert SIGNIFICANT_MS == 5.0
    assert _ratio_cell(1.5, 10.0, 15.0) == '<td class="slower">1.50</td>'  # 5 ms apart
    assert _ratio_cell(1.5, 9.0, 13.5) == '<td class="">1.50</td>'  # 4.5 ms apart
    assert _ratio_cell(3.0, None, 3.0) == '<td class="">3.00</td>'  # no numbers to weigh
