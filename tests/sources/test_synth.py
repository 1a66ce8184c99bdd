"""Synthetic traffic: `[synth]` parsing, deterministic generation, `shadow synth`, `run --synth`."""

from __future__ import annotations

import collections
import io
import itertools
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow.config.load import load
from shadow.config.synth import SynthConfig
from shadow.errors import ConfigError
from shadow.model import Record
from shadow.sources import synth
from shadow.sources.jsonl import record_from_dict
from tests.support import (
    ROOT,
    assert_accounted,
    assert_no_orphans,
    managed_config,
    run_shadow,
    shadow_cmd,
)

TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""

MIXED = """
[synth]
seed = 11

[synth.vars]
address = { gen = "address" }
request = { gen = "uuid" }
n = { gen = "int", min = 0, max = 19 }
tag = { gen = "choice", values = ["a", "b", "c"], weights = [1, 1, 2] }
at = { gen = "timestamp", start = 2026-01-01T00:00:00Z, end = "2026-02-01T00:00:00Z" }
proof = { gen = "hex", bytes = 8 }
did = "did:pkh:eip155:1:{address}"

[[synth.template]]
name = "Item"
weight = 3
path = "/items/{n}"
headers = { "X-Request-Id" = "{request}" }

[[synth.template]]
name = "Stamp"
method = "POST"
path = "/stamps/{address}?tag={tag}"
body = { did = "{did}", n = "{n}", seen = ["{at}", { proof = "{proof}" }] }
"""


def write(tmp_path: Path, text: str, name: str = "synth.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def synth_config(tmp_path: Path, text: str) -> SynthConfig:
    config = load(write(tmp_path, TARGETS + text)).synth
    assert config is not None
    return config


def records(config: SynthConfig, seed: int, count: int) -> list[Record]:
    out = []
    for item in synth.generate(config, seed, count):
        assert isinstance(item, Record), item
        out.append(item)
    return out


# -- determinism -------------------------------------------------------------------------------


@pytest.mark.e2e
def test_same_seed_same_bytes_across_processes(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + MIXED)
    runs = [run_shadow("synth", "-c", str(path), "--count", "300", "--seed", "7") for _ in "ab"]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    lines = runs[0].stdout.splitlines()
    assert len(lines) == 300
    # Every line is a valid native record, with the id naming its line.
    for number, line in enumerate(lines, 1):
        assert record_from_dict(orjson.loads(line)).id == f"synth-{number}"
    # In this process too, and a shorter run is a prefix; another seed, other records.
    config = load(path).synth
    assert config is not None
    for seed, count in ((7, 300), (7, 40), (8, 300)):
        out = io.BytesIO()
        assert synth.write_jsonl(config, seed, count, out) == []
        assert runs[0].stdout.startswith(out.getvalue()) == (seed == 7)


@pytest.mark.e2e
def test_config_seed_and_count_are_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + MIXED.replace("seed = 11", "seed = 11\ncount = 25"))
    default = run_shadow("synth", "-c", str(path))
    explicit = run_shadow("synth", "-c", str(path), "--seed", "11", "--count", "25")
    assert default.returncode == 0 and default.stdout == explicit.stdout
    assert len(default.stdout.splitlines()) == 25


def test_generation_is_lazy(tmp_path: Path) -> None:
    config = synth_config(tmp_path, MIXED)
    first = list(itertools.islice(synth.generate(config, 1, 10**15), 5))
    assert [r.id for r in first if isinstance(r, Record)] == [f"synth-{i}" for i in range(1, 6)]


@pytest.mark.e2e
def test_a_closed_stdout_ends_synth_quietly(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + MIXED)
    with subprocess.Popen(
        shadow_cmd("synth", "-c", str(path), "--count", "100000000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert orjson.loads(proc.stdout.readline())["id"] == "synth-1"
        proc.stdout.close()  # like `| head -1`
        assert proc.wait(timeout=20) == 0
        assert proc.stderr.read() == b""


# -- values and templates ----------------------------------------------------------------------


def test_generators_make_the_documented_shapes(tmp_path: Path) -> None:
    config = synth_config(tmp_path, MIXED)
    stamps = [r for r in records(config, 3, 400) if r.name == "Stamp"]
    assert stamps
    for record in stamps:
        address = record.vars["address"]
        assert len(address) == 42 and address.startswith("0x")
        assert address[2:] == address[2:].lower() and int(address, 16) >= 0
        body = record.body
        assert body["did"] == f"did:pkh:eip155:1:{address}"
        assert "2026-01-01T00:00:00.000Z" <= body["seen"][0] <= "2026-02-01T00:00:00.000Z"
        assert body["seen"][0].endswith("Z") and len(body["seen"][0]) == 24
        assert len(body["seen"][1]["proof"]) == 18
        assert record.path == f"/stamps/{address}?tag={record.vars['tag']}"
    items = [r for r in records(config, 3, 400) if r.name == "Item"]
    ids = {r.header("X-Request-Id") for r in items}
    assert len(ids) == len(items)  # fresh uuid4 each time
    assert all(str(i)[14] == "4" for i in ids)
    assert {int(r.path.rsplit("/", 1)[1]) for r in items} == set(range(20))


def test_placeholders_at_any_depth_keep_json_types(tmp_path: Path) -> None:
    config = synth_config(
        tmp_path,
        """
[synth.vars]
n = { gen = "int", min = 42, max = 42 }
ratio = { gen = "choice", values = [0.5] }
flag = { gen = "choice", values = [true] }
obj = { gen = "choice", values = [{ x = [1, "y"] }] }
word = { gen = "choice", values = ["w"] }
when = 2026-03-04T05:06:07Z

[[synth.template]]
method = "PUT"
path = "/things/{n}"
body = { n = "{n}", ratio = "{ratio}", flag = "{flag}", obj = "{obj}", deep = [[{ w = "{word}", n = ["{n}"] }]], text = "n={n} flag={flag} obj={obj} {{literal}} {not a placeholder}", "key-{word}" = "{when}", fixed = { a = [1, 2] } }
""",
    )
    (record,) = records(config, 0, 1)
    assert record.body == {
        "n": 42,
        "ratio": 0.5,
        "flag": True,
        "obj": {"x": [1, "y"]},
        "deep": [[{"w": "w", "n": [42]}]],
        "text": 'n=42 flag=true obj={"x":[1,"y"]} {literal} {not a placeholder}',
        "key-w": "2026-03-04T05:06:07Z",
        "fixed": {"a": [1, 2]},
    }
    assert record.body_bytes == orjson.dumps(record.body)
    assert record.path == "/things/42"


def test_weights_are_respected(tmp_path: Path) -> None:
    config = synth_config(
        tmp_path,
        """
[[synth.template]]
name = "rare"
weight = 1
path = "/rare"
[[synth.template]]
name = "common"
weight = 3
path = "/common"
[[synth.template]]
name = "half"
weight = 0.5
path = "/half"
""",
    )
    counts = collections.Counter(r.name for r in records(config, 5, 9000))
    # Exact for this seed (generation is a pure function of config, seed and count) ...
    assert counts == {"common": 5971, "rare": 1990, "half": 1039}
    # ... and in the proportions 3 : 1 : 0.5 of the weights.
    assert 2.8 < counts["common"] / counts["rare"] < 3.2
    assert 0.45 < counts["half"] / counts["rare"] < 0.55


def test_choice_weights_and_pools(tmp_path: Path) -> None:
    config = synth_config(
        tmp_path,
        """
[synth.vars]
tier = { gen = "choice", values = ["gold", "bronze"], weights = [1, 9] }
user = { gen = "address", pool = 5 }

[[synth.template]]
path = "/u/{user}/{tier}"
""",
    )
    got = records(config, 9, 2000)
    tiers = collections.Counter(r.vars["tier"] for r in got)
    assert tiers == {"bronze": 1801, "gold": 199}
    users = {r.vars["user"] for r in got}
    assert len(users) == 5  # a fixed pool: the same identities come back
    # The pool is drawn from its own seed: the same with another variable added.
    more = synth_config(
        tmp_path,
        """
[synth.vars]
extra = { gen = "uuid" }
tier = { gen = "choice", values = ["gold"] }
user = { gen = "address", pool = 5 }

[[synth.template]]
path = "/u/{user}/{extra}"
""",
    )
    assert {r.vars["user"] for r in records(more, 9, 2000)} == users


def test_a_scenario_runs_its_steps_in_order_in_one_lane(tmp_path: Path) -> None:
    config = synth_config(
        tmp_path,
        """
[synth.vars]
address = { gen = "address" }
n = { gen = "int", min = 0, max = 9 }

[[synth.template]]
name = "single"
path = "/one/{n}"

[[synth.template]]
weight = 2
auth = "c"
headers = { Accept = "application/json" }
[[synth.template.step]]
name = "add"
method = "POST"
path = "/stamps"
body = [{ owner = "{address}" }]
[[synth.template.step]]
name = "change"
method = "PATCH"
path = "/stamps"
headers = { accept = "text/plain" }
[[synth.template.step]]
name = "score"
path = "/score/{address}"
[[synth.template.step]]
name = "remove"
method = "DELETE"
path = "/stamps"

[auth.c]
type = "jwt"
secret_env = "HOME"
claims = { did = "did:pkh:eip155:1:{address}" }
""",
    )
    got = records(config, 4, 203)
    assert len(got) == 203
    scenarios = 0
    i = 0
    while i < len(got):
        if got[i].name == "single":
            assert got[i].lane is None and got[i].auth is None
            i += 1
            continue
        group = got[i : i + 4]
        assert [r.name for r in group] == ["add", "change", "score", "remove"][: len(group)]
        assert [r.method for r in group] == ["POST", "PATCH", "GET", "DELETE"][: len(group)]
        assert {r.lane for r in group} == {group[0].id}  # one lane, named after its first record
        address = group[0].vars["address"]
        assert all(r.vars == {"address": address} for r in group)  # claims need it: carried
        assert all(r.auth == "c" for r in group)
        assert group[0].body == [{"owner": address}]
        if len(group) > 2:
            assert group[1].headers == (("accept", "text/plain"),)  # the step's own wins
            assert group[2].path == f"/score/{address}"
        scenarios += 1
        i += 4
    assert scenarios > 20
    assert len({r.lane for r in got if r.lane}) == scenarios  # every scenario its own lane


def test_a_template_lane_groups_by_value(tmp_path: Path) -> None:
    config = synth_config(
        tmp_path,
        """
[synth.vars]
user = { gen = "choice", values = ["u1", "u2"] }

[[synth.template]]
path = "/x/{user}"
lane = "user-{user}"
""",
    )
    assert {(r.path, r.lane) for r in records(config, 1, 50)} == {
        ("/x/u1", "user-u1"),
        ("/x/u2", "user-u2"),
    }


BAD_HEADER = """
[synth.vars]
bad = { gen = "choice", values = ["fine", "two\\nlines"] }

[[synth.template]]
path = "/x"
headers = { "X-Note" = "{bad}" }
"""


@pytest.mark.e2e
def test_a_value_that_breaks_a_request_is_an_input_problem(tmp_path: Path) -> None:
    items = list(synth.generate(synth_config(tmp_path, BAD_HEADER), 2, 40))
    problems = [i for i in items if not isinstance(i, Record)]
    assert problems and len(items) == 40
    assert all(p.source == "synth" and "invalid header" in p.message for p in problems)
    path = write(tmp_path, TARGETS + BAD_HEADER)
    result = run_shadow("synth", "-c", str(path), "--count", "40", "--seed", "2")
    assert result.returncode == 1
    assert f"synth record {problems[0].line}: invalid header" in result.stderr
    assert len(result.stdout.splitlines()) == 40 - len(problems)


# -- config errors -----------------------------------------------------------------------------

BASE = '[synth.vars]\naddress = { gen = "address" }\n'
ONE = '[[synth.template]]\npath = "/a/{address}"\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[synth]\nseed = 1\n", "synth.template", "missing"),
        ('[synth.vars]\nx = { gen = "bitcoin" }\n' + ONE, "synth.vars.x.gen", "unknown generator"),
        ("[synth.vars]\nx = { min = 1 }\n" + ONE, "synth.vars.x.gen", "missing"),
        ('[synth.vars]\nx = { gen = "int", min = 5, max = 1 }\n', "synth.vars.x.max", "at least"),
        ('[synth.vars]\nx = { gen = "int" }\n', "synth.vars.x.max", "missing"),
        # (with a template: a file missing one would name both problems at once)
        (
            '[synth.vars]\nx = { gen = "uuid", size = 3 }\n[[synth.template]]\npath = "/a"\n',
            "synth.vars.x.size",
            "unknown key",
        ),
        ('[synth.vars]\nx = { gen = "choice", values = [] }\n', "synth.vars.x.values", "empty"),
        (
            '[synth.vars]\nx = { gen = "choice", values = [1, 2], weights = [1] }\n',
            "synth.vars.x.weights",
            "1 weights for 2 values",
        ),
        (
            '[synth.vars]\nx = { gen = "choice", values = [1], weights = [0] }\n',
            "synth.vars.x.weights",
            "positive",
        ),
        (
            '[synth.vars]\nx = { gen = "timestamp", start = "soon", end = 1 }\n',
            "synth.vars.x.start",
            "not an ISO 8601",
        ),
        ('[synth.vars]\nd = "x-{later}"\nlater = 1\n', "synth.vars.d", "{later} names no"),
        ('[synth.vars]\n"bad name" = 1\n', "synth.vars.bad name", "variable name"),
        (BASE + ONE + "weight = 0\n", "synth.template[0].weight", "must be positive"),
        (BASE + ONE + "weight = -2\n", "synth.template[0].weight", "must be positive"),
        (BASE + ONE + "wieght = 2\n", "synth.template[0].wieght", "unknown key"),
        (BASE + '[[synth.template]]\npath = "/a/{adress}"\n', "synth.template[0].path", "{adress}"),
        (BASE + '[[synth.template]]\npath = "a"\n', "synth.template[0].path", "starting with '/'"),
        (
            BASE + '[[synth.template]]\npath = "/a"\nbody = { x = [{ y = "{nope}" }] }\n',
            "synth.template[0].body",
            "placeholder {nope} names no variable",
        ),
        (
            BASE + '[[synth.template]]\npath = "/a"\nheaders = { X = "{nope}" }\n',
            "synth.template[0].headers.X",
            "{nope}",
        ),
        (
            BASE + '[[synth.template]]\npath = "/a"\nlane = "{nope}"\n',
            "synth.template[0].lane",
            "{nope}",
        ),
        (
            BASE + '[[synth.template]]\npath = "/a"\nbody = 1\nbody_text = "x"\n',
            "synth.template[0].body_text",
            "not both",
        ),
        (
            BASE + '[[synth.template]]\npath = "/a"\nauth = "nope"\n',
            "synth.template[0].auth",
            "no [auth.nope] profile",
        ),
        (
            BASE
            + '[[synth.template]]\n[[synth.template.step]]\npath = "/a"\n'
            + '[[synth.template.step]]\npath = "/b/{nope}"\n',
            "synth.template[0].step[1].path",
            "{nope}",
        ),
        (
            BASE + '[[synth.template]]\nmethod = "GET"\n[[synth.template.step]]\npath = "/a"\n',
            "synth.template[0].method",
            "unknown key",
        ),
        (
            BASE + '[[synth.template]]\nvars = ["ghost"]\npath = "/a"\n',
            "synth.template[0].vars",
            "'ghost' names no variable",
        ),
        (
            BASE
            + '[[synth.template]]\npath = "/a"\nauth = "c"\nvars = []\n'
            + '[auth.c]\ntype = "jwt"\nsecret_env = "HOME"\nclaims = { did = "{address}" }\n',
            "synth.template[0].vars",
            "[auth.c] claims use {address}",
        ),
        (
            BASE
            + '[[synth.template]]\npath = "/a"\nauth = "c"\n'
            + '[auth.c]\ntype = "jwt"\nsecret_env = "HOME"\nclaims = { did = "{wallet}" }\n',
            "synth.template[0].auth",
            "no [synth.vars] entry defines",
        ),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, TARGETS + text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


@pytest.mark.e2e
def test_cli_reports_config_errors_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + BASE + ONE + "weight = 0\n")
    result = run_shadow("synth", "-c", str(path))
    assert result.returncode == 2 and result.stdout == b""
    assert f"{path}: synth.template[0].weight: must be positive" in result.stderr
    bare = write(tmp_path, TARGETS, "bare.toml")
    for args in (("synth", "-c", str(bare)), ("run", "-c", str(bare), "--synth", "3")):
        result = run_shadow(*args)
        assert result.returncode == 2
        assert f"{bare}: synth: missing" in result.stderr
    good = write(tmp_path, TARGETS + BASE + ONE, "good.toml")
    result = run_shadow("run", "-c", str(good), "--synth", "3", str(good))
    assert result.returncode == 2 and "--synth" in result.stderr


@pytest.mark.e2e
def test_check_shows_the_synth_section(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + MIXED)
    result = run_shadow("check", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert "[synth] with 2 template(s)" in result.stdout.decode()
    printed = run_shadow("check", "-c", str(path), "--print")
    assert printed.returncode == 0, printed.stderr
    shown = tomllib.loads(printed.stdout.decode())["synth"]
    assert shown == tomllib.loads(MIXED)["synth"]  # as written


# -- shadow run --synth ------------------------------------------------------------------------

ITEMS_SYNTH = """
[synth]
seed = 3
[synth.vars]
n = { gen = "int", min = 0, max = 24 }
[[synth.template]]
path = "/items/{n}"
"""


@pytest.mark.e2e
def test_run_synth_replays_exactly_what_synth_writes(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag, extra=ITEMS_SYNTH)
    written = run_shadow("synth", "-c", str(config), "--count", "60", "--seed", "21")
    expected: list[dict[str, Any]] = [orjson.loads(line) for line in written.stdout.splitlines()]
    differ = {i for i, r in enumerate(expected) if int(r["path"].rsplit("/", 1)[1]) % 5 == 0}
    result = run_shadow(
        "run", "-c", str(config), "--synth", "60", "--seed", "21",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.events[0]["sources"] == ["synth:60@21"]
    mismatches = result.of("mismatch")
    assert {m["seq"] for m in mismatches} == differ
    assert all(m["request"] == expected[m["seq"]] for m in mismatches)
    summary = result.summary
    assert summary["requests"] == 60 and summary["mismatched"] == len(differ)
    assert_accounted(summary)
    assert_no_orphans(tag)


LANE_SYNTH = """
[synth.vars]
user = { gen = "address" }
[[synth.template]]
[[synth.template.step]]
method = "POST"
path = "/lane/{user}/0"
[[synth.template.step]]
method = "POST"
path = "/lane/{user}/1"
[[synth.template.step]]
method = "POST"
path = "/lane/{user}/2"
[[synth.template.step]]
method = "POST"
path = "/lane/{user}/3"
"""


@pytest.mark.e2e
def test_run_synth_keeps_scenario_steps_in_order(tmp_path: Path, tag: str) -> None:
    config = managed_config(tmp_path, tag, extra=LANE_SYNTH)
    result = run_shadow(
        "run", "-c", str(config), "--synth", "120", "--concurrency", "16", "--emit", "all",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    # The fake answers 409 to a lane step that arrives before the one it follows.
    statuses = {(e["status"]["primary"], e["status"]["candidate"]) for e in result.of("match")}
    assert statuses == {(200, 200)}, result.stdout[:2000]
    assert result.summary["matched"] == 120 and result.returncode == 0
    assert_no_orphans(tag)
