"""Benchmark the log readers: records parsed per second for each format, on this machine.

For each format (native JSONL, HAR, GoReplay .gor, nginx access log) a file of N records is
generated with the same mix of requests (70% GETs, 30% POSTs with a ~300-byte JSON body, except
the access log, which holds no bodies and so only GETs). HAR entries carry a response, as
devtools and mitmproxy exports do, and the .gor file a response payload per request, as
GoReplay writes with `--output-file` when tracking responses; responses are read and skipped.

Each format is read through `shadow.sources.opening.iter_inputs` (detection included) in a fresh child
process, three times, alternating formats; the medians are reported as records per second of
the reader's CPU time (which a busy machine changes little) and of wall time, with the child's
peak RSS from the kernel. Results go to stdout and to the "Parsers" section of bench/README.md
(that section only is replaced, or appended if missing).

    .venv/bin/python bench/bench_parsers.py [--records 100000] [--runs 3] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
README = BENCH / "README.md"
FORMATS = ("jsonl", "har", "gor", "access")
SEPARATOR = "\n\U0001f435\U0001f648\U0001f649\n".encode()
_HEX = "0123456789abcdef"


def _requests(
    count: int, seed: int, bodies: bool
) -> Iterator[tuple[str, str, bytes | None, float]]:
    rng = random.Random(seed)
    start = 1795791600.0
    for n in range(count):
        address = "0x" + "".join(rng.choices(_HEX, k=40))
        ts = start + n * 0.01
        if bodies and rng.random() < 0.3:
            body = orjson.dumps(
                [
                    {
                        "credentialSubject": {
                            "hash": f"v0.0.0:{rng.getrandbits(128):032x}=",
                            "provider": rng.choice(["Google", "Ens", "Discord"]),
                            "id": f"did:pkh:eip155:1:{address}",
                        }
                    }
                ]
                * 2
            )
            yield "POST", "/internal/check-bans", body, ts
        else:
            yield "GET", f"/internal/score/v2/335/{address}?page={n % 7}", None, ts


_HEADERS = [
    ("Host", "scorer.passport.example"),
    ("User-Agent", "python-requests/2.32.3"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Accept", "*/*"),
    ("AUTHORIZATION", "bench-internal-key"),
]
_RESPONSE = b'{"address":"0x0","score":"21.250","passing_score":true,"threshold":"20.00000"}'


def write_jsonl(path: Path, count: int) -> None:
    with path.open("wb") as f:
        for method, target, body, ts in _requests(count, 1, bodies=True):
            record: dict[str, object] = {
                "method": method,
                "path": target,
                "headers": _HEADERS,
                "ts": ts,
            }
            if body is not None:
                record["body"] = orjson.loads(body)
            f.write(orjson.dumps(record) + b"\n")


def write_har(path: Path, count: int) -> None:
    with path.open("w") as f:
        f.write(
            '{\n  "log": {\n    "version": "1.2",\n    "creator": {"name": "bench", "version": "1"},\n'
        )
        f.write('    "entries": [\n')
        for n, (method, target, body, ts) in enumerate(_requests(count, 1, bodies=True)):
            request: dict[str, object] = {
                "method": method,
                "url": "https://scorer.passport.example" + target,
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": v} for k, v in _HEADERS],
                "queryString": [],
                "cookies": [],
                "headersSize": -1,
                "bodySize": len(body or b""),
            }
            if body is not None:
                request["postData"] = {"mimeType": "application/json", "text": body.decode()}
            entry = {
                "startedDateTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z",
                "time": 7.4,
                "request": request,
                "response": {
                    "status": 200,
                    "statusText": "OK",
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "content": {
                        "size": len(_RESPONSE),
                        "mimeType": "application/json",
                        "text": _RESPONSE.decode(),
                    },
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": len(_RESPONSE),
                },
                "cache": {},
                "timings": {"send": 0.2, "wait": 6.9, "receive": 0.3},
            }
            text = json.dumps(entry, indent=2).replace("\n", "\n      ")
            f.write(("      " if n == 0 else ",\n      ") + text)
        f.write("\n    ]\n  }\n}\n")


def write_gor(path: Path, count: int) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in _HEADERS).encode()
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(_RESPONSE)).encode()
        + b"\r\n\r\n"
        + _RESPONSE
    )
    with path.open("wb") as f:
        for n, (method, target, body, ts) in enumerate(_requests(count, 1, bodies=True)):
            pid = f"{n:024x}".encode()
            ns = str(int(ts * 1e9)).encode()
            length = (
                b""
                if body is None
                else b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n"
            )
            f.write(
                b"1 "
                + pid
                + b" "
                + ns
                + b" -1\n"
                + f"{method} {target} HTTP/1.1\r\n".encode()
                + head
                + length
                + b"\r\n"
                + (body or b"")
                + SEPARATOR
            )
            f.write(b"2 " + pid + b" " + ns + b" 4100000\n" + response + SEPARATOR)


def write_access(path: Path, count: int) -> None:
    with path.open("w") as f:
        for method, target, _, ts in _requests(count, 1, bodies=False):
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts))
            f.write(
                f'10.20.3.12 - - [{stamp}] "{method} {target} HTTP/1.1" 200 611 "-" '
                '"python-requests/2.32.3"\n'
            )


WRITERS = {"jsonl": write_jsonl, "har": write_har, "gor": write_gor, "access": write_access}
SUFFIXES = {"jsonl": ".jsonl", "har": ".har", "gor": ".gor", "access": ".access.log"}


def child(path: str) -> None:
    """Read one file completely; print records, problems, seconds (wall and CPU) and peak RSS
    as JSON."""
    from shadow.model import InputProblem
    from shadow.sources.opening import iter_inputs

    records = problems = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for item in iter_inputs([path], 16 << 20):
        if isinstance(item, InputProblem):
            problems += 1
        else:
            records += 1
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"records": records, "problems": problems, "seconds": elapsed, "cpu_s": cpu_s}
    print(json.dumps({**result, "rss_kib": rss_kib}))


def measure(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)], capture_output=True, check=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-readme", action="store_true", help="only print the results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="shadow-bench-parsers-") as tmp:
        files = {}
        for fmt in FORMATS:
            files[fmt] = Path(tmp) / f"bench{SUFFIXES[fmt]}"
            WRITERS[fmt](files[fmt], args.records)
        runs: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in FORMATS}
        for _ in range(args.runs):
            for fmt in FORMATS:
                runs[fmt].append(measure(files[fmt]))
        rows = [_row(fmt, files[fmt].stat().st_size, runs[fmt], args.records) for fmt in FORMATS]
    table = _table(rows, args.records, args.runs)
    print(table)
    if not args.no_readme:
        update_readme(table)
        print(f"\n(written to the Parsers section of {README})")
    return 0


def _row(fmt: str, size: int, runs: list[dict[str, float]], expected: int) -> dict[str, object]:
    for run in runs:
        if run["records"] != expected or run["problems"]:
            raise SystemExit(f"{fmt}: read {run['records']} records, {run['problems']} problems")
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu_s = statistics.median(r["cpu_s"] for r in runs)
    return {
        "format": fmt,
        "mib": size / 2**20,
        "rate": expected / seconds,
        "cpu_rate": expected / cpu_s,
        "mib_s": size / 2**20 / cpu_s,
        "rss": max(r["rss_kib"] for r in runs) / 1024,
        "each": ", ".join(f"{expected / r['cpu_s']:,.0f}" for r in runs),
    }


def _table(rows: list[dict[str, object]], records: int, runs: int) -> str:
    names = {
        "jsonl": "native JSONL",
        "har": "HAR 1.2",
        "gor": "GoReplay .gor",
        "access": "nginx access log",
    }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    about = (
        "`bench/bench_parsers.py` times each log reader (`shadow.sources.opening.iter_inputs`, format "
        f"detection included) on a generated file of {records:,} records per format: 70% GETs, "
        "30% POSTs with a JSON body of about 300 bytes (the access log: GETs only, it holds no "
        "bodies). The HAR entries carry a response and the .gor file a response payload per "
        "request, as real captures do; they are read and skipped. Each format is read in a "
        f"fresh process, the formats alternating, {runs} runs; medians. Peak RSS is the "
        "child's, from the kernel."
    )
    measured = (
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on a {os.cpu_count()}-CPU "
        f"machine (Python {platform.python_version()}) shared with other work, load average "
        f"{load} at the end. The rates are per second of the reader's own CPU time, which "
        "other work changes little; the wall-clock rate, beside them, is what that load left."
    )
    note = (
        "Memory does not grow with the file: HAR is read entry by entry (ijson's C parser), "
        "GoReplay payload by payload, the line formats line by line."
    )
    lines = [
        "## Parsers",
        "",
        textwrap.fill(about, 95),
        "",
        "    .venv/bin/python bench/bench_parsers.py [--records 100000] [--runs 3] [--no-readme]",
        "",
        textwrap.fill(measured, 95),
        "",
        (
            "| format | file, MiB | records/s (CPU) | MiB/s (CPU) | records/s (wall) "
            "| peak RSS, MiB | records/s (CPU), each run |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines.extend(
        f"| {names[str(row['format'])]} | {row['mib']:.1f} | {row['cpu_rate']:,.0f} | "
        f"{row['mib_s']:.1f} | {row['rate']:,.0f} | {row['rss']:.0f} | {row['each']} |"
        for row in rows
    )
    lines += ["", textwrap.fill(note, 95)]
    return "\n".join(lines) + "\n"


def update_readme(section: str) -> None:
    """Replace the "## Parsers" section of bench/README.md (append it if there is none),
    leaving every other section as it is."""
    text = README.read_text() if README.exists() else "# shadow benchmarks\n"
    start = text.find("\n## Parsers\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    README.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
