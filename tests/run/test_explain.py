"""The stderr summary's explanations, from events as they are written."""

from __future__ import annotations

from shadow.run.explain import HINTS, MAX_KEYS, Explainer


def _mismatch(seq: int, *diffs: dict[str, object]) -> dict[str, object]:
    return {"seq": seq, "endpoint": "Score", "diffs": list(diffs)}


def test_paths_are_ranked_with_one_example_each_and_errors_get_a_hint() -> None:
    explainer = Explainer()
    for seq in (1, 2):
        explainer.observe(
            "mismatch",
            _mismatch(
                seq,
                {"path": "/items/0/at", "kind": "value", "primary": "a", "candidate": seq},
                {"path": "/items/1/at", "kind": "type", "primary": "a", "candidate": seq},
                {"path": "/n", "kind": "value", "primary": 1, "candidate": 2, "suppressed": "x"},
            ),
        )
    explainer.observe("mismatch", _mismatch(3, {"path": "/gone", "kind": "missing", "primary": 1}))
    explainer.observe(
        "error",
        {"endpoint": "Score", "side": "candidate", "error": "timeout", "message": "no answer"},
    )
    explainer.observe("server_exited", {"target": "candidate", "returncode": -9, "expected": False})
    explainer.observe("server_exited", {"target": "primary", "returncode": 0, "expected": True})
    lines = explainer.lines({"candidate": {"restarts": 2, "down_s": 1.5}})
    assert lines == [
        "top differences:",
        '  2 x Score /items/*/at (type,value): "a" -> 1 (seq 1)',
        "  1 x Score /gone (missing): 1 -> (absent) (seq 3)",
        "errors:",
        "  1 x timeout (candidate), e.g. Score: no answer",
        f"    hint: {HINTS['timeout']}",
        "candidate exited unexpectedly (code -9)",
        "candidate was restarted 2 time(s), down 1.5 s in all",
    ]
    assert explainer.lines({}, details=False) == ["candidate exited unexpectedly (code -9)"]


def test_the_tables_stay_bounded() -> None:
    explainer = Explainer()
    for seq in range(MAX_KEYS + 50):
        explainer.observe("mismatch", _mismatch(seq, {"path": f"/k{seq}", "kind": "value"}))
    assert len(explainer.paths) == MAX_KEYS
