"""The tally's verdict on exchanges built by hand: statuses, both-failed, nothing compared."""

from __future__ import annotations

from shadow.config.verdict import Limits, Thresholds
from shadow.model import (
    REPEAT,
    CompareRules,
    Difference,
    Exchange,
    Failure,
    Outcome,
    Record,
    Response,
)
from shadow.run.tally import Tally


def exchange(
    primary: Outcome,
    candidate: Outcome,
    endpoint: str = "E",
    record: Record | None = None,
    rules: CompareRules | None = None,
) -> Exchange:
    outcomes = {"primary": primary, "candidate": candidate, REPEAT: primary}
    return Exchange(0, record or Record("GET", "/"), endpoint, rules or CompareRules(), outcomes)


def answer(status: int) -> Response:
    return Response(status, (), b"{}", 1.0)


def test_answers_are_counted_by_class_and_code_per_target_and_endpoint() -> None:
    tally = Tally(["primary", "candidate"])
    tally.add(exchange(answer(200), answer(200), "A"))
    tally.add(exchange(answer(404), Failure("timeout", "slow"), "B"))
    summary = tally.summary()
    assert summary["statuses"] == {
        "candidate": {"2xx": 1, "failed": 1, "200": 1},
        "primary": {"2xx": 1, "4xx": 1, "200": 1, "404": 1},  # the repeat is not a target
    }
    assert summary["by_endpoint"]["B"]["statuses"] == {
        "candidate": {"failed": 1},
        "primary": {"4xx": 1, "404": 1},
    }


def test_the_same_failure_on_both_sides_is_counted_and_judged() -> None:
    tally = Tally(["primary", "candidate"])
    for _ in range(3):
        tally.add(exchange(answer(401), answer(401), "Score"))
    tally.add(exchange(answer(200), answer(200), "Score"))
    differs = exchange(answer(500), answer(400), "Score")
    differs.diffs = [Difference("status", "status", 500, 400)]
    tally.add(differs)  # a mismatch, not alike
    assert tally.summary()["by_endpoint"]["Score"]["both_failed"] == {"401": 3}
    assert tally.failures(Thresholds()) == [
        "overall mismatch rate 1/5 above the mismatch_rate threshold 0",
        (
            "3 of 4 matched exchanges of 'Score' answered 401 on both sides: "
            "are the credentials right?"
        ),
    ]
    # Allowed for that endpoint, it passes on that count.
    lenient = Thresholds(mismatch_rate=1.0, endpoints={"Score": Limits(1.0, 0.0, 1.0)})
    assert tally.failures(lenient) == []


def test_transport_errors_of_one_kind_on_both_sides_are_both_failed() -> None:
    tally = Tally(["primary", "candidate"])
    tally.add(exchange(Failure("refused", "x"), Failure("refused", "y")))
    tally.add(exchange(Failure("refused", "x"), Failure("timeout", "y")))  # not alike
    assert tally.errors == 2 and tally.summary()["both_failed"] == {"refused": 1}
    reasons = tally.failures(Thresholds(error_rate=1.0))
    assert reasons == [
        (
            "1 of 1 exchanges answered alike of 'E' failed with refused on both sides: "
            "are the servers up at these urls?"
        )
    ]


def test_a_run_failed_only_by_its_error_rate_is_told_apart_from_one_with_differences() -> None:
    tally = Tally(["primary", "candidate"])
    tally.add(exchange(answer(200), answer(200)))
    tally.add(exchange(answer(200), Failure("timeout", "slow")))
    assert tally.failures(Thresholds()) == [
        "overall error rate 1/2 above the error_rate threshold 0"
    ]
    assert tally.failures(Thresholds(), errors=False) == []
    assert tally.failed_on_errors_only(Thresholds())
    assert not tally.failed_on_errors_only(Thresholds(error_rate=0.5))  # it passes
    differs = exchange(answer(500), answer(400))
    differs.diffs = [Difference("status", "status", 500, 400)]
    tally.add(differs)  # a difference too
    assert not tally.failed_on_errors_only(Thresholds())
    assert tally.failed_on_errors_only(Thresholds(mismatch_rate=0.5))  # within its limit


def test_an_expected_status_is_not_a_failure() -> None:
    tally = Tally(["primary", "candidate"])
    tally.add(exchange(answer(404), answer(404), record=Record("GET", "/", expect_status=404)))
    tally.add(exchange(answer(404), answer(404), rules=CompareRules(expect_status=404)))
    tally.add(exchange(answer(410), answer(410), rules=CompareRules(expect_status=404)))
    assert tally.summary()["both_failed"] == {"410": 1}
    assert tally.failures(Thresholds()) == []  # 1 of 3: not more than half


def test_failures_of_several_kinds_are_named_by_the_commonest() -> None:
    tally = Tally(["primary", "candidate"])
    for status in (404, 404, 503, 200):
        tally.add(exchange(answer(status), answer(status), "Mixed"))
    assert tally.failures(Thresholds()) == [
        "3 of 4 matched exchanges of 'Mixed' answered the same error (404...) on both sides"
    ]


def test_nothing_compared_fails_and_says_why_even_when_interrupted() -> None:
    tally = Tally(["primary", "candidate"])
    assert tally.failures(Thresholds()) == ["nothing was compared (the logs held no record)"]
    tally.skipped, tally.input_errors = 3, 1
    assert tally.failures(Thresholds(input_errors=5)) == [
        "nothing was compared (3 skipped by [replay] methods; 1 could not be read)"
    ]
    tally.interrupted = True
    assert tally.failures(Thresholds(input_errors=5)) == [
        (
            "nothing was compared (3 skipped by [replay] methods; 1 could not be read;"
            " stopped before any record was sent)"
        )
    ]
