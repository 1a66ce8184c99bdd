"""Regenerate docs/report-demo.png: the HTML report of a fresh `shadow demo` run, in Chromium.

    .venv/bin/python docs/screenshot.py [--out docs/report-demo.png]

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (the dev extra).
The picture runs from the top of the report to the end of the first endpoint's section.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shadow(*args: str, cwd: Path = ROOT) -> int:
    command = [sys.executable, "-m", "shadow", *args]
    return subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, check=False).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(DOCS / "report-demo.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shadow-shot-") as tmp:
        events, page_file = Path(tmp) / "demo.ndjson", Path(tmp) / "demo.html"
        if shadow("demo", "-q", "--emit", "all", "--output", str(events), "--run-dir", tmp) != 1:
            raise SystemExit("shadow demo did not find its two mismatches")
        if shadow("report", events.name, "--html", page_file.name, cwd=Path(tmp)) != 0:
            raise SystemExit("shadow report failed")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(page_file.as_uri())
            box = page.locator("#ep-0").bounding_box()
            assert box is not None
            height = box["y"] + box["height"] + 24
            clip = {"x": 0, "y": 0, "width": 1200, "height": height}
            page.screenshot(path=args.out, clip=clip, full_page=True)
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
