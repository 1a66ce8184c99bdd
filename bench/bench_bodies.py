"""Bodies that are not JSON: structural comparison against the byte summary it replaced.

Pairs of about 10 and 150 KB of XML (an order of items), HTML (a page of rows) and plain text
(a report of lines), each against a copy that differs in one value and in indentation (markup)
or in one line (text). shadow's structural comparison (`diff_responses`, the body's
Content-Type choosing it) and the summary every differing non-JSON body used to get (size,
SHA-256 and excerpt: `shadow.compare.bodies.summarize` on both sides) run on the same pairs,
side by side in one process. Rates are per CPU second (`time.process_time`).

    .venv/bin/python bench/bench_bodies.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from shadow.compare.bodies import summarize
from shadow.compare.diff import diff_responses
from shadow.model import CompareRules, Response

RULES = CompareRules()


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(f"{'pair':<14}{'diffs':>6}{'structural /s':>15}{'summary /s':>12}{'ms each':>9}")
    for label, a, b in pairs():
        found = diff_responses(a, b, RULES)
        structural = rate(lambda a=a, b=b: diff_responses(a, b, RULES), args.seconds)
        summary = rate(lambda a=a, b=b: (summarize(a.body), summarize(b.body)), args.seconds)
        print(
            f"{label:<14}{len(found):>6}{structural:>15.0f}{summary:>12.0f}{1e3 / structural:>9.2f}"
        )


if __name__ == "__main__":
    main()
