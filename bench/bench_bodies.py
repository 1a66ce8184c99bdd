"""Large bodies: what comparing a pair of bodies costs, JSON and not, in CPU per pair.

JSON (`--part json`): documents of about 1, 10 and 100 KB shaped like an API's answer (top
scalars, an object of per-provider scores, a list of events nested seven deep), each paired
with: identical bytes; equal JSON written with indentation; equal JSON with the members of
every object in reverse order; one leaf changed near the top (`/score`); one leaf changed
deep in the last event; and many leaves (every fourth number and string) changed. For each
pair, with the collector set as a replay sets it: CPU per pair of `diff_responses` alone,
and its parts: `orjson.loads` of both bodies, `parse_json_body` of both (what parsing costs
beyond `orjson.loads`), and the walk (`diff_json` on the parsed values). `--against REV` runs the same measures for a git
revision of shadow (exported to a temporary folder) and this checkout in alternating child
processes, and prints each revision's medians and the ratios side by side.

Parsers (`--part parsers`, by hand): one 100 KB body turned into Python objects by
`orjson.loads` and by msgspec and pysimdjson when they are installed (they are not
dependencies), and pysimdjson's lazy parse.

Markup and text (`--part markup`): structural comparison of XML, HTML and text bodies
(`diff_responses`, the body's Content-Type choosing it) against the byte summary every
differing non-JSON body used to get (size, SHA-256 and excerpt: `summarize` on both sides):
pairs of about 10 and 150 KB, each against a copy that differs in one value and in
indentation (markup) or in one line (text).

Rates are per CPU second (`time.process_time`).

    .venv/bin/python bench/bench_bodies.py [--part json|parsers|markup|all] [--seconds 2]
        [--against REV] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # shadow is imported late: `--child` chooses which copy
    from shadow.model import Response

ROOT = Path(__file__).resolve().parent.parent


# --- JSON ----------------------------------------------------------------------------------


def json_document(body_bytes: int) -> dict[str, Any]:
    """An API-like answer of about `body_bytes`: half per-provider scores, half events."""
    stamps: dict[str, Any] = {}
    events: list[Any] = []
    doc: dict[str, Any] = {
        "address": "0x" + "5a" * 20,
        "score": "23.456789",
        "status": "DONE",
        "last_score_timestamp": "2026-11-27T10:15:39.584000+00:00",
        "evidence": {"type": "ThresholdScoreCheck", "success": True, "rawScore": 23.456789},
        "stamp_scores": stamps,
        "events": events,
    }
    size, i = len(orjson.dumps(doc)), 0
    while size < body_bytes:
        stamp = {"score": round(0.5 + (i * 37 % 100) / 40, 3), "dedup": i % 7 == 0}
        event = {
            "id": 1000 + i,
            "kind": ("stake", "unstake", "slash")[i % 3],
            "detail": {
                "chain": "optimism",
                "tx": {
                    "block": 19_000_000 + i * 17,
                    "logs": [{"topic": f"0x{i:08x}", "data": {"amount": f"{i * 1.25:.2f}"}}],
                },
            },
        }
        stamps[f"Provider{i}"] = stamp
        events.append(event)
        size += len(orjson.dumps(stamp)) + len(orjson.dumps(event)) + len(f"Provider{i}") + 6
        i += 1
    return doc


def _reversed_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_members(v) for k, v in reversed(value.items())}
    if isinstance(value, list):
        return [_reversed_members(v) for v in value]
    return value


def _change_leaves(value: Any, every: int, seen: list[int]) -> Any:
    """A copy with every `every`-th number or string changed (`seen` counts the leaves)."""
    if isinstance(value, dict):
        return {k: _change_leaves(v, every, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_change_leaves(v, every, seen) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    seen[0] += 1
    if seen[0] % every:
        return value
    return value + 1 if isinstance(value, int | float) else f"{value}x"


def json_pairs() -> list[tuple[str, bytes, bytes]]:
    out = []
    for size in (1_000, 10_000, 100_000):
        doc = json_document(size)
        body = orjson.dumps(doc)
        top = dict(doc, score="23.456790")
        deep = orjson.loads(body)
        deep["events"][-1]["detail"]["tx"]["logs"][-1]["data"]["amount"] += "1"
        label = f"{size // 1000} KB"
        out += [
            (f"{label} identical", body, bytes(body)),
            (f"{label} equal, indented", body, orjson.dumps(doc, option=orjson.OPT_INDENT_2)),
            (f"{label} equal, reordered", body, orjson.dumps(_reversed_members(doc))),
            (f"{label} one leaf, top", body, orjson.dumps(top)),
            (f"{label} one leaf, deep", body, orjson.dumps(deep)),
            (f"{label} many leaves", body, orjson.dumps(_change_leaves(doc, 4, [0]))),
        ]
    return out


def json_measures(seconds: float) -> dict[str, dict[str, float]]:
    """Per pair: µs of CPU for compare, loads, parse and walk, and the differences found."""
    from shadow.compare import diff as compare
    from shadow.model import CompareRules, Response

    rules = CompareRules()
    out: dict[str, dict[str, float]] = {}
    # The collector as a replay runs it (shadow.run.collector): parsing 100 KB makes
    # thousands of containers, and CPython's default young threshold would collect often.
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    for label, a, b in json_pairs():
        ra, rb = Response(200, (), a, 1.0), Response(200, (), b, 1.0)
        va, vb = orjson.loads(a), orjson.loads(b)
        found = compare.diff_responses(ra, rb, rules)

        def walk(va: Any = va, vb: Any = vb) -> object:
            return compare.diff_json(va, vb, rules, compare.Differences())

        out[label] = {
            "diffs": found.total,
            "compare_us": 1e6
            / rate(lambda ra=ra, rb=rb: compare.diff_responses(ra, rb, rules), seconds),
            "loads_us": 1e6
            / rate(lambda a=a, b=b: (orjson.loads(a), orjson.loads(b)), seconds / 2),
            "parse_us": 1e6
            / rate(
                lambda a=a, b=b: (compare.parse_json_body(a), compare.parse_json_body(b)),
                seconds / 2,
            ),
            "walk_us": 1e6 / rate(walk, seconds / 2),
        }
    return out


def _export(rev: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "shadow"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _child(package_root: Path, seconds: float) -> dict[str, dict[str, float]]:
    argv = [sys.executable, __file__, "--child", str(package_root), "--seconds", str(seconds)]
    return orjson.loads(subprocess.run(argv, check=True, capture_output=True).stdout)


def json_against(rev: str, rounds: int, seconds: float) -> None:
    """Revision `rev` (A) and this checkout (B), alternating child processes; medians."""
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="shadow-bodies-") as tmp:
        # B is copied too, so that edits while the rounds run do not mix versions.
        snapshot = Path(tmp) / "B"
        shutil.copytree(ROOT / "shadow", snapshot / "shadow")
        roots = {"A": _export(rev, Path(tmp) / "A"), "B": snapshot}
        for round_ in range(rounds):
            for name, root in roots.items():
                runs[name].append(_child(root, seconds))
                print(f"  {name} round {round_} done", file=sys.stderr, flush=True)
    median = {
        name: {
            label: {k: statistics.median(r[label][k] for r in results) for k in results[0][label]}
            for label in results[0]
        }
        for name, results in runs.items()
    }
    print(f"A = {rev}, B = this checkout; {rounds} alternating rounds, medians, µs of CPU per pair")
    print(
        "| pair | diffs | compare A | compare B | B / A | walk A | walk B | B / A | parse B | loads B |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, a in median["A"].items():
        b = median["B"][label]
        print(
            f"| {label} | {b['diffs']:.0f} | {a['compare_us']:.1f} | {b['compare_us']:.1f} | "
            f"{b['compare_us'] / a['compare_us']:.2f} | {a['walk_us']:.1f} | {b['walk_us']:.1f} | "
            f"{b['walk_us'] / a['walk_us']:.2f} | {b['parse_us']:.1f} | {b['loads_us']:.1f} |"
        )


def json_table(seconds: float) -> None:
    print("| pair | diffs | compare µs | loads µs | parse µs | parse / loads | walk µs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, m in json_measures(seconds).items():
        print(
            f"| {label} | {m['diffs']:.0f} | {m['compare_us']:.1f} | {m['loads_us']:.1f} | "
            f"{m['parse_us']:.1f} | {m['parse_us'] / m['loads_us']:.2f} | {m['walk_us']:.1f} |"
        )


def parsers_table(seconds: float) -> None:
    """One 100 KB body to Python objects by each parser installed, and simdjson's lazy parse
    (a document of proxies, nothing built) with the minified text of its root."""
    import importlib.util

    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    body = orjson.dumps(json_document(100_000))
    work: dict[str, Callable[[], object]] = {"orjson.loads": lambda: orjson.loads(body)}
    if importlib.util.find_spec("msgspec"):
        import msgspec

        work["msgspec.json.decode"] = lambda: msgspec.json.decode(body)
    if importlib.util.find_spec("simdjson"):
        import simdjson

        work["simdjson.loads"] = lambda: simdjson.loads(body)
        work["simdjson lazy parse"] = lambda: simdjson.Parser().parse(body)
        work["simdjson lazy parse + root .mini"] = lambda: simdjson.Parser().parse(body).mini
    print(f"| parser, {len(body)} B | µs per body | vs orjson.loads |")
    print("| --- | ---: | ---: |")
    base = 0.0
    for name, job in work.items():
        us = 1e6 / rate(job, seconds)
        base = base or us
        print(f"| {name} | {us:.0f} | {us / base:.2f} |")


# --- markup and text -------------------------------------------------------------------------


def xml(items: int, changed: bool) -> bytes:
    rows = [
        f'<item sku="S-{i}" qty="{i % 5}"><name>thing {i}</name><price>{i}.50</price></item>'
        for i in range(items)
    ]
    if changed:
        rows[items // 2] = rows[items // 2].replace(".50<", ".75<")
    joiner = "\n  " if changed else ""
    return f'<?xml version="1.0"?>\n<order id="1">{joiner.join(rows)}</order>'.encode()


def html(rows: int, changed: bool) -> bytes:
    cells = [
        f'<div class="row r{i}"><p>text {i}<a href="/x/{i}">link</a></p></div>' for i in range(rows)
    ]
    if changed:
        cells[rows // 2] = cells[rows // 2].replace("text", "TEXT")
    joiner = "\n    " if changed else ""
    return f"<!DOCTYPE html><html><body>{joiner.join(cells)}</body></html>".encode()


def text(lines: int, changed: bool) -> bytes:
    rows = [f"{i:06d} order shipped to warehouse {i % 17} in bay {i % 5}" for i in range(lines)]
    if changed:
        rows[lines // 2] += " (late)"
    return "\n".join(rows).encode()


def pairs() -> list[tuple[str, Response, Response]]:
    from shadow.model import Response

    out = []
    for name, make, kind, small, large in (
        ("xml", xml, "application/xml", 130, 2000),
        ("html", html, "text/html", 150, 2200),
        ("text", text, "text/plain", 180, 2700),
    ):
        for size in (small, large):
            a, b = make(size, False), make(size, True)
            headers = (("Content-Type", kind),)
            label = f"{name} {len(a) // 1000} KB"
            out.append((label, Response(200, headers, a, 1.0), Response(200, headers, b, 1.0)))
    return out


def rate(work: Callable[[], object], seconds: float) -> float:
    done, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        work()
        done += 1
    return done / elapsed


def markup_table(seconds: float) -> None:
    from shadow.compare.bodies import summarize
    from shadow.compare.diff import diff_responses
    from shadow.model import CompareRules

    rules = CompareRules()
    print(f"{'pair':<14}{'diffs':>6}{'structural /s':>15}{'summary /s':>12}{'ms each':>9}")
    for label, a, b in pairs():
        found = diff_responses(a, b, rules)
        structural = rate(lambda a=a, b=b: diff_responses(a, b, rules), seconds)
        summary = rate(lambda a=a, b=b: (summarize(a.body), summarize(b.body)), seconds)
        print(
            f"{label:<14}{len(found):>6}{structural:>15.0f}{summary:>12.0f}{1e3 / structural:>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--part", choices=("json", "parsers", "markup", "all"), default="all")
    parser.add_argument("--against", metavar="REV", help="JSON: a git revision side by side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one side of --against: JSON measures of that package
        sys.path.insert(0, str(args.child))
        sys.stdout.buffer.write(orjson.dumps(json_measures(args.seconds)))
        return
    if args.part in ("json", "all"):
        if args.against:
            json_against(args.against, args.rounds, args.seconds)
        else:
            json_table(args.seconds)
    if args.part == "parsers":  # not in `all`: msgspec and pysimdjson are not dependencies
        parsers_table(args.seconds)
    if args.part in ("markup", "all"):
        markup_table(args.seconds)


if __name__ == "__main__":
    main()
