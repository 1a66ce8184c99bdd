"""The suppression rule and the learned-rules file, with exchanges built by hand."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadow.compare.diff import diff_responses
from shadow.compare.noise import Calibrator, calibrator, refusal
from shadow.compare.noise_rules import toml_string
from shadow.config.load import load
from shadow.config.verdict import NoiseConfig
from shadow.model import (
    REPEAT,
    CompareRules,
    Difference,
    Exchange,
    Failure,
    Record,
    Response,
    fold_indices,
)
from shadow.replay.routes import Router

RULES = CompareRules()


def answer(body: Any, status: int = 200) -> Response:
    return Response(status, (), orjson.dumps(body), 1.0)


def judged(
    calibrator: Calibrator,
    primary: Any,
    candidate: Any,
    reference: Any = None,
    endpoint: str = "GET /x",
    method: str = "GET",
) -> Exchange:
    outcomes: dict[str, Any] = {"primary": answer(primary), "candidate": answer(candidate)}
    if reference is not None:
        outcomes[calibrator.key] = answer(reference)
    exchange = Exchange(0, Record(method, "/x"), endpoint, RULES, outcomes)
    exchange.diffs = diff_responses(outcomes["primary"], outcomes["candidate"], RULES)
    calibrator.judge(exchange)
    return exchange


def paths(diffs: list[Difference]) -> list[str]:
    return [d.path for d in diffs]


def test_fold_indices_and_refusal() -> None:
    assert fold_indices("/items/12/at") == "/items/*/at"
    assert fold_indices("/") == "/" and fold_indices("header:date") == "header:date"
    assert fold_indices("/a1/٣") == "/a1/٣"  # only ASCII digits are indices
    assert refusal(Difference("status", "status", 200, 500), "status") == "the status"
    assert refusal(Difference("/a", "type", 1, "1"), "/a") == "a type change"
    assert refusal(Difference("/", "value", 1, 2), "/") == "the whole body"
    assert refusal(Difference("/", "body", {}, {}), "/") == ""  # not JSON: not comparable
    assert refusal(Difference("/a", "missing", {"x": 1}, None), "/a") == "a whole object"
    assert refusal(Difference("/a", "extra", None, [1]), "/a") == "an array"
    assert refusal(Difference("/a/3", "value", 1, 2), "/a/*") == "every element of an array"
    assert refusal(Difference("/a/3/b", "value", 1, 2), "/a/*/b") == ""
    assert refusal(Difference("header:x", "header", "1", "2"), "header:x") == ""


def test_a_noisy_path_is_suppressed_and_a_stable_one_reported_every_time() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    for n in range(20):
        exchange = judged(
            calibrator,
            {"uuid": f"p{n}", "stable": 1},
            {"uuid": f"c{n}", "stable": 2},
            reference={"uuid": f"r{n}", "stable": 1},
        )
        assert paths(exchange.diffs) == ["/stable"]
        assert paths(exchange.noise) == ["/uuid"]


def test_the_first_exchange_is_judged_on_its_own_pair() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    first = judged(calibrator, {"t": 1}, {"t": 2}, reference={"t": 3})
    assert first.noise and not first.diffs
    strict = Calibrator(NoiseConfig(min_samples=2), secondary=True)
    first = judged(strict, {"t": 1}, {"t": 2}, reference={"t": 3})
    assert paths(first.diffs) == ["/t"]  # one pair is not enough evidence yet
    second = judged(strict, {"t": 1}, {"t": 2}, reference={"t": 3})
    assert paths(second.noise) == ["/t"]


def test_rarely_noisy_paths_do_not_hide_a_real_change() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    reported = 0
    for n in range(40):
        reference = {"v": "flake" if n == 5 else "same"}
        exchange = judged(calibrator, {"v": "same"}, {"v": "changed"}, reference=reference)
        reported += bool(exchange.diffs)
    # Noise 1 in 40 pairs against a difference every time: not comparable, never suppressed.
    assert reported == 40
    [finding] = calibrator.findings()
    assert (finding.verdict, finding.noise, finding.pairs) == ("weak", 1, 40)


def test_the_rate_rule_uses_the_ratio() -> None:
    # The legacy disagrees with itself in 2 of 3 pairs; the candidate differs every time.
    def run(ratio: float) -> list[bool]:
        calibrator = Calibrator(NoiseConfig(ratio=ratio, min_rate=0.0), secondary=True)
        return [
            bool(judged(calibrator, {"v": 0}, {"v": 9}, reference={"v": int(n % 3 > 0)}).noise)
            for n in range(12)
        ]

    assert run(0.5) == [False] + [True] * 11  # from the second pair on, >= 50% of 100%
    assert run(0.9) == [False] * 12  # 67% is not 90% of 100%


def test_noise_of_another_kind_does_not_suppress() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    exchange = judged(calibrator, {"at": "x1"}, {"at": 5}, reference={"at": "x2"})
    assert exchange.diffs[0].kind == "type" and not exchange.noise
    gone = judged(calibrator, {"at": "x1"}, {}, reference={"at": "x3"})
    assert gone.diffs[0].kind == "missing" and not gone.noise


def test_refused_noise_is_never_suppressed() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    for n in range(3):
        reference = {"meta": {"x": n}, "nonce": str(n), "list": [n]}
        judged(calibrator, {"meta": None, "nonce": n}, {"nonce": -1}, reference=reference)
    exchange = judged(calibrator, {"nonce": 1}, {"nonce": "1"}, reference={"nonce": "1"})
    assert not exchange.noise
    verdicts = {f.pattern: (f.verdict, f.reason) for f in calibrator.findings()}
    assert verdicts["/meta"] == ("refused", "a rule would hide a type change")
    assert verdicts["/nonce"] == ("refused", "a rule would hide a type change")
    assert verdicts["/list"] == ("refused", "a rule would hide an array")
    assert len(calibrator.refusals()) == 3


def test_a_normalizer_is_learned_when_it_explains_all_the_noise() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    zulu, offset = "2024-11-21T10:02:39Z", "2024-11-21T10:02:39+00:00"
    same = judged(calibrator, {"at": zulu}, {"at": offset}, reference={"at": offset})
    assert same.noise  # equal as instants: the learned rule is `datetime`
    moved = judged(
        calibrator, {"at": zulu}, {"at": "2024-11-21T11:00:00Z"}, reference={"at": offset}
    )
    assert paths(moved.diffs) == ["/at"]  # a different instant is a real difference
    [finding] = calibrator.findings()
    assert finding.normalizer == "datetime"


def test_volatile_values_keep_their_type_and_presence_compared() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    assert judged(calibrator, {"id": "a1"}, {"id": "c1"}, reference={"id": "b1"}).noise
    assert judged(calibrator, {"id": "a2"}, {"id": 7}, reference={"id": "b2"}).diffs
    assert judged(calibrator, {"id": "a3"}, {}, reference={"id": "b3"}).diffs
    [finding] = calibrator.findings()
    assert finding.normalizer == "volatile"


def test_a_failed_reference_costs_a_sample_not_the_exchange() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    outcomes: dict[str, Any] = {
        "primary": answer({"v": 1}),
        "candidate": answer({"v": 2}),
        REPEAT: Failure("timeout", "slow"),
    }
    exchange = Exchange(0, Record("GET", "/x"), "GET /x", RULES, outcomes)
    exchange.diffs = diff_responses(outcomes["primary"], outcomes["candidate"], RULES)
    calibrator.judge(exchange)
    assert exchange.failed_sides() == [] and paths(exchange.diffs) == ["/v"]
    assert calibrator.pairs == 0


def test_reference_targets() -> None:
    repeat = Calibrator(NoiseConfig(), secondary=False)
    assert repeat.reference_for(Record("GET", "/"), "E") == "primary"
    assert repeat.reference_for(Record("POST", "/"), "E") is None
    writes = Calibrator(NoiseConfig(repeat_methods=("GET", "POST")), secondary=False)
    assert writes.reference_for(Record("POST", "/"), "E") == "primary"
    assert Calibrator(NoiseConfig(), secondary=True).reference_for(Record("POST", "/"), "E") == (
        "secondary"
    )


def test_the_learned_file_parses_and_becomes_rules(tmp_path: Path) -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    calibrator.note_route('Odd "name"', "GET", "/odd/{int}")
    for n in range(4):
        judged(
            calibrator,
            {"a": {"b": n}, "at": "2024-11-21T10:00:00Z", "obj": None, "o": {}, "flag": True},
            {"a": {"b": -n}, "at": "2024-11-21T10:00:00Z"},
            reference={"a": {"b": n + 1}, "at": "2024-11-21T10:00:00+00:00", "obj": {"z": 1}},
            endpoint='Odd "name"',
        )
    text = calibrator.render("run1", "2026-01-01 00:00 UTC")
    data = tomllib.loads(text)
    [block] = data["compare"]["endpoint"]
    assert block["name"] == 'Odd "name"' and block["method"] == "GET"
    assert block["ignore"] == ["/flag"]  # comes and goes
    assert block["normalize"] == {"/a/b": "volatile", "/at": "datetime"}
    assert '# refused: "/obj"' in text and "a type change" in text
    assert '# refused: "/o"' in text and "a whole object" in text
    assert "legacy 4/4 pairs (100%), candidate 4/4 (100%)" in text
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:1"\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:2"\n' + text
    )
    route = Router(load(config_file)).route(Record("GET", "/odd/7"))
    assert route.endpoint == 'Odd "name"' and route.rules.ignore == ("/flag",)
    assert dict(route.rules.normalize) == {"/a/b": "volatile", "/at": "datetime"}


@pytest.mark.parametrize("text", ['a"b', "a\\b", "tab\there", "nl\n", "\x7f", "é ü"])
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"k = {toml_string(text)}")["k"] == text


def test_header_noise_is_learned_as_ignore_headers() -> None:
    rules = CompareRules(headers=("*",))
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    calibrator.note_route("GET /h", "GET", "/h")
    for n in range(3):
        outcomes: dict[str, Any] = {
            side: Response(200, (("X-Runtime", f"{side}{n}"), ("ETag", '"1"')), b"{}", 1.0)
            for side in ("primary", "candidate", "secondary")
        }
        exchange = Exchange(n, Record("GET", "/h"), "GET /h", rules, outcomes)
        exchange.diffs = diff_responses(outcomes["primary"], outcomes["candidate"], rules)
        calibrator.judge(exchange)
        assert paths(exchange.noise) == ["header:x-runtime"] and not exchange.diffs
    [block] = tomllib.loads(calibrator.render("r", "2026-01-01 00:00 UTC"))["compare"]["endpoint"]
    assert block["ignore_headers"] == ["x-runtime"] and "ignore" not in block


def test_sample_calibrates_an_even_share_of_reads_and_every_write_to_a_secondary() -> None:
    repeat = Calibrator(NoiseConfig(sample=0.25, full_pairs=0), secondary=False)
    picked = [repeat.reference_for(Record("GET", "/"), "E") for _ in range(12)]
    assert picked == [None, None, None, "primary"] * 3
    secondary = Calibrator(NoiseConfig(sample=0.5, full_pairs=0), secondary=True)
    reads = [secondary.reference_for(Record("GET", "/"), "E") for _ in range(4)]
    assert reads == [None, "secondary", None, "secondary"]
    assert secondary.reference_for(Record("POST", "/"), "E") == "secondary"
    none = Calibrator(NoiseConfig(sample=0.0, full_pairs=0), secondary=False)
    assert none.reference_for(Record("GET", "/"), "E") is None


def test_every_read_of_an_endpoint_is_calibrated_until_it_has_full_pairs() -> None:
    calibrator = Calibrator(NoiseConfig(full_pairs=3, sample=0.5), secondary=False)
    a = [calibrator.reference_for(Record("GET", "/a"), "A") for _ in range(7)]
    assert a == ["primary"] * 3 + [None, "primary", None, "primary"]
    # Another endpoint starts with its own full share.
    assert [calibrator.reference_for(Record("GET", "/b"), "B") for _ in range(3)] == ["primary"] * 3


def test_calibration_is_on_by_default_and_off_when_asked() -> None:
    on = calibrator(NoiseConfig(), secondary=False, learning=False)
    assert on is not None and on.mode == "repeat"
    assert calibrator(NoiseConfig(enabled=False), secondary=True, learning=False) is None
    assert calibrator(NoiseConfig(enabled=False), secondary=False, learning=True) is not None


def test_a_pair_whose_statuses_differ_teaches_nothing() -> None:
    calibrator = Calibrator(NoiseConfig(repeat_methods=("POST",)), secondary=False)
    for n in range(4):
        assert calibrator.reference_for(Record("POST", "/m"), "POST /m") == "primary"
        outcomes: dict[str, Any] = {
            "primary": Response(200, (), b'{"message": "created"}', 1.0),
            "candidate": Response(200, (), b'{"message": "created v2"}', 1.0),
            REPEAT: Response(400, (), b'{"message": "already exists"}', 1.0),
        }
        exchange = Exchange(n, Record("POST", "/m"), "POST /m", RULES, outcomes)
        exchange.diffs = diff_responses(outcomes["primary"], outcomes["candidate"], RULES)
        calibrator.judge(exchange)
        assert paths(exchange.diffs) == ["/message"] and not exchange.noise
    assert (calibrator.pairs, calibrator.discarded) == (0, 4)
    assert calibrator.findings() == []
    assert calibrator.notes()[0].startswith("calibration made no pairs: 4 discarded")


def test_json_types_that_differ_between_legacy_answers_teach_no_rule() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    for n in range(4):
        exchange = judged(
            calibrator, {"v": n}, {"v": n + 1}, reference={"v": n + 9 if n % 2 else str(n)}
        )
        assert paths(exchange.diffs) == ["/v"]  # never hidden
    [finding] = calibrator.findings()
    assert finding.verdict == "refused" and "type change" in finding.reason


def test_a_body_that_is_not_json_and_differs_in_the_legacy_is_not_comparable() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    calibrator.note_route("GET /blob", "GET", "/blob")
    binary = (("Content-Type", "application/octet-stream"),)  # text would be compared by line
    for n in range(3):
        outcomes: dict[str, Any] = {
            "primary": Response(200, binary, bytes([n, 1]), 1.0),
            "candidate": Response(500 if n == 2 else 200, binary, bytes([n, 2]), 1.0),
            REPEAT: Response(200, binary, bytes([n, 3]), 1.0),
        }
        exchange = Exchange(n, Record("GET", "/blob"), "GET /blob", RULES, outcomes)
        exchange.diffs = diff_responses(outcomes["primary"], outcomes["candidate"], RULES)
        calibrator.judge(exchange)
        assert paths(exchange.noise) == ["/"]
        assert paths(exchange.diffs) == (["status"] if n == 2 else [])  # the status still counts
    assert calibrator.summary()["body_not_comparable"] == ["GET /blob"]
    assert any("body not comparable on 'GET /blob'" in line for line in calibrator.notes())
    [block] = tomllib.loads(calibrator.render("r", "now"))["compare"]["endpoint"]
    assert block["ignore"] == ["/"]


def test_a_calibration_without_any_safe_record_says_so() -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=False)
    assert calibrator.reference_for(Record("POST", "/"), "E") is None
    [note] = calibrator.notes()
    assert note == (
        "calibration made no pairs: no record was safe to repeat (repeat_methods: GET, HEAD); "
        "to calibrate writes, configure a secondary; no difference was taken for noise"
    )
    assert Calibrator(NoiseConfig(), secondary=False).notes() == []  # no record: nothing to say


def test_a_learned_ignore_headers_hides_a_header_the_config_lists(tmp_path: Path) -> None:
    """Live calibration suppresses a noisy header that `[compare] headers` names; the learned
    rule, added to the config, must hide it too (ignore_headers wins over headers)."""
    rules = CompareRules(headers=("x-runtime", "etag"))
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    calibrator.note_route("GET /h", "GET", "/h")

    def outcomes(n: int, etag: str) -> dict[str, Any]:
        return {
            side: Response(200, (("X-Runtime", f"{side}{n}"), ("ETag", etag)), b"{}", 1.0)
            for side in ("primary", "secondary")
        } | {"candidate": Response(200, (("X-Runtime", "c"), ("ETag", '"2"')), b"{}", 1.0)}

    for n in range(3):
        live = Exchange(n, Record("GET", "/h"), "GET /h", rules, outcomes(n, '"1"'))
        live.diffs = diff_responses(live.outcomes["primary"], live.outcomes["candidate"], rules)
        calibrator.judge(live)
        assert paths(live.noise) == ["header:x-runtime"] and paths(live.diffs) == ["header:etag"]
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:1"\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:2"\n'
        '[compare]\nheaders = ["x-runtime", "etag"]\n' + calibrator.render("r", "now")
    )
    learned = Router(load(config_file)).route(Record("GET", "/h")).rules
    answers = outcomes(9, '"1"')
    found = diff_responses(answers["primary"], answers["candidate"], learned)
    assert paths(found) == ["header:etag"]  # the same verdict as the live calibration's


def test_an_endpoint_says_whether_its_records_are_safe_to_repeat() -> None:
    repeat = Calibrator(NoiseConfig(), secondary=False)
    assert repeat.reference_for(Record("POST", "/"), "E", safe=True) == "primary"  # an RPC read
    assert repeat.reference_for(Record("GET", "/"), "E", safe=False) is None
    assert repeat.reference_for(Record("POST", "/"), "E", safe=None) is None  # a write: never
    secondary = Calibrator(NoiseConfig(sample=0.0, full_pairs=0), secondary=True)
    assert (
        secondary.reference_for(Record("POST", "/"), "E", safe=True) is None
    )  # sampled, as a read
    assert secondary.reference_for(Record("GET", "/"), "E", safe=False) == "secondary"  # as a write


def test_learned_rules_are_keyed_by_the_endpoint_identity(tmp_path: Path) -> None:
    calibrator = Calibrator(NoiseConfig(), secondary=True)
    identity = (("header", "X-Amz-Target", "Svc.Get"), ("body", "/v", 2), ("name", "", "Get"))
    calibrator.note_route("Get", "POST", "/", identity)
    for n in range(3):
        judged(calibrator, {"at": n}, {"at": n + 9}, reference={"at": n + 1}, endpoint="Get")
    [block] = tomllib.loads(calibrator.render("r", "2026-01-01 00:00 UTC"))["compare"]["endpoint"]
    assert block["match_header"] == {"X-Amz-Target": "Svc.Get"}
    assert block["match_body"] == {"/v": 2} and block["match_name"] == "Get"
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:1"\n'
        '[targets.candidate]\nurl = "http://127.0.0.1:2"\n'
        + calibrator.render("r", "2026-01-01 00:00 UTC")
    )
    router = Router(load(config_file))
    headers = (("X-Amz-Target", "Svc.Get"),)
    same = Record("POST", "/", headers=headers, body={"v": 2}, body_form="json", name="Get")
    assert dict(router.route(same).rules.normalize) == {"/at": "volatile"}
    other = Record("POST", "/", headers=(("X-Amz-Target", "Svc.Put"),), body={"v": 2})
    assert router.route(other).rules.normalize == ()  # another operation: not its rule
