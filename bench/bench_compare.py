"""The compare engine alone: diffs per second against DeepDiff on the same response pairs.

The corpus is realistic response pairs: score-API objects of about 1, 10 and 100 KB (the
bodies bench/servers.py serves) and lists of stake rows, each paired with a copy changed the
ways rewrites differ: one value, a type (an integer served as a string: the GTC bug), a
timestamp's precision (the check-bans bug), a member missing or added, a row added or
removed at the end, several values at once; plus pairs whose bytes differ but whose JSON is
equal (members reordered) and pairs of identical bytes.

shadow compares `Response` bodies (bytes) with its default, strict rules; DeepDiff gets the
same bytes parsed by orjson (its fastest start; timed with it) and options that make it as
strict (`threshold_to_diff_deeper=0`: always report members, not whole objects). For every
pair the differing paths are checked to be the same: DeepDiff's paths mapped to RFC 6901
pointers against shadow's. Changes that insert into the middle of arrays are left out: the
two tools then legitimately report different things (index by index against an edit
script). Identical bytes must be compared without parsing: parse calls are counted.

    .venv/bin/python bench/bench_compare.py [--seconds 3] [--json]

Rates are per CPU second of this process (`time.process_time`), steadier than wall time on a
machine doing other work; DeepDiff gets one pass over the corpus, shadow as many as fit in
`--seconds`.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from servers import make_body

from shadow.compare import diff as compare
from shadow.model import CompareRules, Response

RULES = CompareRules()


@dataclass(frozen=True)
class Pair:
    name: str
    primary: bytes
    candidate: bytes


def _stake_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": 1001 + i,
            "chain": rng.choice(("mainnet", "optimism", "arbitrum")),
            "staker": "0x" + f"{rng.getrandbits(160):040x}",
            "stakee": "0x" + f"{rng.getrandbits(160):040x}",
            "amount": f"{rng.uniform(1, 5000):.18f}",
            "unlock_time": "2026-11-27T10:15:39.584Z",
            "lock_time": "2026-05-27T10:15:39.584Z",
            "last_updated_in_block": rng.randint(10_000_000, 20_000_000),
        }
        for i in range(count)
    ]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _set(doc: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = change(doc[path[-1]])


def _changed_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return "changed" if value is None else None


def _mutations(rng: random.Random) -> dict[str, Callable[[Any], None]]:
    def some_leaf(doc: Any) -> tuple[Any, ...]:
        return rng.choice([p for p in _leaves(doc) if p])

    def type_change(doc: Any) -> None:
        ints = [p for p in _leaves(doc) if p and isinstance(_get(doc, p), int)]
        _set(doc, rng.choice(ints), lambda v: str(v) if not isinstance(v, bool) else int(v))

    def precision(doc: Any) -> None:
        stamps = [p for p in _leaves(doc) if isinstance(_get(doc, p), str) and "T" in _get(doc, p)]
        _set(doc, rng.choice(stamps), lambda v: v.replace("Z", "855Z").replace("+00:00", "855Z"))

    def missing(doc: Any) -> None:
        path = some_leaf(doc)
        parent = _get(doc, path[:-1])
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop()

    def extra(doc: Any) -> None:
        target = doc if isinstance(doc, dict) else doc[-1]
        target["rewrite_only"] = {"cached": True, "ttl_s": 60}

    def rows(doc: Any) -> None:
        arrays = (
            [doc] if isinstance(doc, list) else [v for v in doc.values() if isinstance(v, list)]
        )
        if arrays:
            arrays[0].append(copy.deepcopy(arrays[0][0]) if arrays[0] else 1)
        else:
            doc["evidence"]["threshold"] = [20.0]

    def several(doc: Any) -> None:
        for path in rng.sample([p for p in _leaves(doc) if p], 5):
            _set(doc, path, _changed_value)

    return {
        "value": lambda doc: _set(doc, some_leaf(doc), _changed_value),
        "type": type_change,
        "precision": precision,
        "missing": missing,
        "extra": extra,
        "rows": rows,
        "several": several,
    }


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def corpus(seed: int = 7) -> list[Pair]:
    rng = random.Random(seed)
    bases: list[tuple[str, Any]] = [
        (f"score {size // 1024} KB", orjson.loads(make_body(size)))
        for size in (1024, 10240, 102400)
    ]
    bases += [(f"stake rows x{n}", _stake_rows(n, rng)) for n in (5, 50, 400)]
    pairs: list[Pair] = []
    for label, doc in bases:
        body = orjson.dumps(doc)
        pairs.append(Pair(f"{label}: identical bytes", body, bytes(body)))
        reordered = (
            dict(reversed(list(doc.items())))
            if isinstance(doc, dict)
            else [dict(reversed(list(r.items()))) for r in doc]
        )
        pairs.append(Pair(f"{label}: equal, members reordered", body, orjson.dumps(reordered)))
        for name, mutate in _mutations(rng).items():
            changed = copy.deepcopy(doc)
            mutate(changed)
            pairs.append(Pair(f"{label}: {name}", body, orjson.dumps(changed)))
    return pairs


# --- the two engines ---------------------------------------------------------------------------


def shadow_paths(pair: Pair) -> set[str]:
    primary = Response(200, (), pair.primary, 0.0)
    candidate = Response(200, (), pair.candidate, 0.0)
    return {d.path for d in compare.diff_responses(primary, candidate, RULES)}


def _deepdiff(pair: Pair) -> Any:
    from deepdiff import DeepDiff

    return DeepDiff(
        orjson.loads(pair.primary),
        orjson.loads(pair.candidate),
        view="tree",
        threshold_to_diff_deeper=0,
    )


def _pointer(segments: list[Any]) -> str:
    if not segments:
        return "/"
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def deepdiff_paths(pair: Pair) -> set[str]:
    tree = _deepdiff(pair)
    return {_pointer(item.path(output_format="list")) for items in tree.values() for item in items}


def rate(run: Callable[[Pair], Any], pairs: list[Pair], seconds: float) -> float:
    """Pairs compared per CPU second, over whole passes of `pairs` (at least one, and as many
    as fit in about `seconds`): CPU time, so that other work on the machine counts less."""
    done, started = 0, time.process_time()
    while True:
        for pair in pairs:
            run(pair)
        done += len(pairs)
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return done / elapsed


def count_parses(pairs: list[Pair]) -> int:
    """How many times shadow parses a body while comparing `pairs`."""
    calls = 0
    original = compare.parse_json_body

    def counting(body: bytes) -> tuple[bool, Any]:
        nonlocal calls
        calls += 1
        return original(body)

    compare.parse_json_body = counting  # type: ignore[assignment]
    try:
        for pair in pairs:
            shadow_paths(pair)
    finally:
        compare.parse_json_body = original  # type: ignore[assignment]
    return calls


def measure(seconds: float) -> dict[str, Any]:
    pairs = corpus()
    disagreements = [
        (p.name, sorted(shadow_paths(p) ^ deepdiff_paths(p)))
        for p in pairs
        if shadow_paths(p) != deepdiff_paths(p)
    ]
    differing = [p for p in pairs if p.primary != p.candidate]
    identical = [p for p in pairs if p.primary == p.candidate]
    big_identical = [p for p in identical if len(p.primary) > 50_000]
    shadow_rate = rate(shadow_paths, differing, seconds)
    deepdiff_rate = rate(deepdiff_paths, differing, 0)  # one pass takes seconds already
    return {
        "pairs": len(pairs),
        "differing_pairs": len(differing),
        "bytes_per_pair": sum(len(p.primary) + len(p.candidate) for p in differing)
        // len(differing),
        "paths_agree": len(pairs) - len(disagreements),
        "disagreements": disagreements,
        "shadow_per_s": shadow_rate,
        "deepdiff_per_s": deepdiff_rate,
        "ratio": shadow_rate / deepdiff_rate,
        "parses_for_identical": count_parses(identical),
        "identical_pairs": len(identical),
        "identical_100kb_per_s": rate(shadow_paths, big_identical, seconds / 3),
        "parse_100kb_per_s": rate(
            lambda p: compare.parse_json_body(p.primary), big_identical, seconds / 3
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per engine")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.seconds)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if not result["disagreements"] and not result["parses_for_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
