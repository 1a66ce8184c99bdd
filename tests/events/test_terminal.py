"""What a person sees when stdout is a terminal: mismatch lines, the headline, no live view,
and NDJSON exactly as before on a pipe or with --json.

The e2e tests run the CLI on a pseudo-terminal of a known width (tests.support.run_on_terminal)
and read the screen it wrote; the in-process ones render events through TerminalView.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from shadow.events.terminal import MAX_DIFF_LINES, TerminalView
from tests.support import event_of, events_of, run_on_terminal, run_shadow, shadow_cmd

LIVE_VIEW_MARKS = ("top mismatching endpoints", "\x1b[?25l")  # its table, its hidden cursor


def _events(path: Path) -> list[dict[str, object]]:
    return events_of(path.read_bytes())


@pytest.mark.e2e
def test_demo_on_a_terminal_prints_lines_for_people_and_events_to_the_run_dir(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    screen = run_on_terminal("demo", "--run-dir", str(run_dir), columns=80)
    assert screen.returncode == 1, screen.text
    lines = screen.lines
    assert not [line for line in lines if line.lstrip().startswith("{")], screen.text
    # stdout's lines are cut to the width (stderr's, "shadow: ...", the terminal wraps)
    stdout_lines = [line for line in lines if not line.startswith("shadow: ")]
    assert all(len(line) <= 80 for line in stdout_lines), [x for x in lines if len(x) > 80]
    text = screen.text
    assert "mismatch  GTC Stake  GET /internal/stake/gtc/0xf129" in text
    assert '    /items/0/last_updated_in_block  type  12345678 -> "12345678"' in lines
    assert "mismatch  Check Bans  POST /internal/check-bans  200" in lines
    assert any(
        line.startswith('    /0/end_time  value  "2025-06-01T10:02:39.584Z" -> "2025-06-01T1')
        for line in lines
    )
    # the headline of the text report, then where the events are
    assert "shadow report: FAIL (2 mismatched, 0 errors, 0 input errors; exit 1)" in lines
    assert "top differences (by exchanges affected)" in lines
    events_file = run_dir / "events.ndjson"
    assert f"shadow: events in {events_file}" in text.replace("\n", "")
    for mark in LIVE_VIEW_MARKS:
        assert mark not in screen.raw
    events = _events(events_file)
    assert events[0]["event"] == "run_started"
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["mismatched"] == 2
    assert len([e for e in events if e["event"] == "mismatch"]) == 2


@pytest.mark.e2e
@pytest.mark.parametrize("flag", [["--json"], ["--output", "-"]])
def test_json_or_output_dash_forces_ndjson_on_a_terminal(tmp_path: Path, flag: list[str]) -> None:
    run_dir = tmp_path / "run"
    screen = run_on_terminal("demo", "--run-dir", str(run_dir), *flag, columns=200)
    assert screen.returncode == 1, screen.text
    events = [event_of(line) for line in screen.lines if line.startswith('{"event"')]
    assert events[0]["event"] == "run_started"
    assert events[-1]["event"] == "run_finished"
    for mark in LIVE_VIEW_MARKS:  # never drawn among the JSON lines
        assert mark not in screen.raw
    assert not (run_dir / "events.ndjson").exists()


@pytest.mark.e2e
def test_output_and_emit_keep_working_on_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "all.ndjson"
    run_dir = tmp_path / "run"
    screen = run_on_terminal(
        "demo", "--run-dir", str(run_dir), "--output", str(out), "--emit", "all", columns=100
    )
    assert screen.returncode == 1, screen.text
    assert len([line for line in screen.lines if line.startswith("mismatch  ")]) == 2
    assert f"shadow: events in {out}" in screen.text.replace("\n", "")
    events = events_of(out.read_bytes())
    assert len([e for e in events if e["event"] == "match"]) == 11  # --emit all, in the file
    assert not (run_dir / "events.ndjson").exists()


@pytest.mark.e2e
def test_the_live_view_is_drawn_on_stderr_when_stdout_is_elsewhere(tmp_path: Path) -> None:
    events_file = tmp_path / "events.ndjson"
    screen = run_on_terminal(
        "demo", "--run-dir", str(tmp_path / "run"), stdout_path=events_file, columns=100
    )
    assert screen.returncode == 1, screen.text
    assert "top mismatching endpoints" in screen.text  # the live view, on stderr's terminal
    assert '{"event"' not in screen.raw
    events = events_of(events_file.read_bytes())  # stdout: the events, nothing else
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"


@pytest.mark.e2e
def test_the_readme_quick_start_shows_what_the_demo_prints(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    screen = run_on_terminal("demo", "--run-dir", str(tmp_path / "run"), columns=100)
    starts = ("mismatch", "    /", "shadow report:", "top differences", "  exch.", "statuses:")
    starts += ("shadow: exit", "shadow: statuses", "because ")
    shown = [line for line in screen.lines if line.startswith(starts)]
    # statuses once: in the headline, not again on stderr when both share the terminal
    assert len(shown) == 11, screen.text
    for line in shown:
        assert f"\n{line}\n" in quick_start, line


@pytest.mark.e2e
def test_a_pipe_gets_ndjson_as_before_and_no_events_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_shadow("demo", "--run-dir", str(run_dir))
    assert result.returncode == 1
    assert result.summary["mismatched"] == 2
    assert not (run_dir / "events.ndjson").exists()
    # the stderr summary explains: the paths with one example each
    assert "shadow: top differences:" in result.stderr
    assert '1 x GTC Stake /items/*/last_updated_in_block (type): 12345678 -> "12345678"' in (
        result.stderr
    )


COLOUR = re.compile(r"\x1b\[[0-9;]*\b(3[0-8]|9[0-7])\b[0-9;]*m")  # a foreground colour


@pytest.mark.e2e
def test_no_color_and_force_color(tmp_path: Path) -> None:
    plain = run_on_terminal("demo", "--run-dir", str(tmp_path / "a"), env={"NO_COLOR": "1"})
    assert "mismatch  GTC Stake" in plain.text
    assert not COLOUR.search(plain.raw), plain.raw
    coloured = run_on_terminal("demo", "--run-dir", str(tmp_path / "b"))
    assert "\x1b[1;31mmismatch" in coloured.raw
    # stderr on a pipe: no colour, unless FORCE_COLOR asks for it
    usage = ["run", "--primary", "http://127.0.0.1:1", "--candidate", "http://127.0.0.1:2"]
    for env, expected in (({}, False), ({"FORCE_COLOR": "1"}, True)):
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        proc = subprocess.run(
            shadow_cmd(*usage), capture_output=True, env={**environ, **env}, timeout=60, check=False
        )
        assert proc.returncode == 2
        assert ("\x1b[1;31merror: \x1b[0m" in proc.stderr.decode()) is expected, proc.stderr


# --- in-process ----------------------------------------------------------------------------


def _view(width: int = 60) -> tuple[TerminalView, io.StringIO]:
    out = io.StringIO()
    view = TerminalView(out)
    view.console = Console(file=out, width=width, color_system=None, highlight=False)
    return view, out


def _mismatch(diffs: list[dict[str, object]]) -> dict[str, object]:
    return {
        "seq": 3,
        "endpoint": "Score",
        "request": {"method": "GET", "path": "/score/1"},
        "status": {"primary": 200, "candidate": 500},
        "diffs": diffs,
    }


def test_a_mismatch_is_cut_to_the_width_and_escapes_never_reach_the_terminal() -> None:
    view, out = _view(44)
    long_value = "x" * 200
    view.on_event(
        "mismatch",
        _mismatch(
            [
                {"path": "/a", "kind": "value", "primary": long_value, "candidate": "\x1b[31mred"},
                {"path": "/gone", "kind": "missing", "primary": 1, "candidate": None},
                {
                    "path": "/n",
                    "kind": "value",
                    "primary": 1,
                    "candidate": 2,
                    "suppressed": "noise",
                },
            ]
        ),
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "mismatch  Score  GET /score/1  200 -> 500"
    assert all(len(line) <= 44 for line in lines)
    assert lines[1].startswith('    /a  value  "xxx') and lines[1].endswith("…")
    assert lines[2] == "    /gone  missing  1 -> (absent)"
    assert len(lines) == 3  # the suppressed one is noise, not shown
    assert "\x1b" not in out.getvalue()


def test_many_differences_are_counted_past_the_first_few() -> None:
    view, out = _view(80)
    diffs = [{"path": f"/{i}", "kind": "value", "primary": i, "candidate": -i} for i in range(9)]
    view.on_event("mismatch", _mismatch(diffs))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + MAX_DIFF_LINES + 1
    assert lines[-1] == f"    ... and {9 - MAX_DIFF_LINES} more"


def test_an_error_and_an_unexpected_exit_are_shown() -> None:
    view, out = _view(80)
    view.on_event(
        "error",
        {
            "endpoint": "Score",
            "request": {"method": "POST", "path": "/x"},
            "side": "candidate",
            "error": "timeout",
            "message": "candidate: no complete answer within 5s",
        },
    )
    view.on_event("server_exited", {"target": "candidate", "returncode": -9, "expected": False})
    view.on_event("server_exited", {"target": "primary", "returncode": 0, "expected": True})
    assert out.getvalue().splitlines() == [
        "error  Score  POST /x  candidate timeout",
        "    candidate: no complete answer within 5s",
        "server candidate exited unexpectedly (code -9)",
    ]


def test_progress_is_one_line_per_interval() -> None:
    view, out = _view(80)
    view.on_event(
        "progress",
        {
            "elapsed_s": 3725.2,
            "sent": 12345,
            "rate": 98.76,
            "matched": 12000,
            "mismatched": 300,
            "errors": 45,
        },
    )
    assert out.getvalue() == (
        "1:02:05  sent 12,345 (98.8/s)  matched 12,000  mismatched 300  errors 45\n"
    )


def test_what_a_line_would_say_twice_it_says_once() -> None:
    out = io.StringIO()
    view = TerminalView(out)
    view.console = Console(file=out, width=120, color_system=None)
    view.on_event(
        "mismatch",
        {
            "endpoint": "GET /only.txt",
            "request": {"method": "GET", "path": "/only.txt"},
            "status": {"primary": 200, "candidate": 404},
            "diffs": [{"path": "status", "kind": "status", "primary": 200, "candidate": 404}],
        },
    )
    assert out.getvalue().splitlines() == [
        "mismatch  GET /only.txt  200 -> 404",
        "    status  200 -> 404",
    ]
