"""The collector's settings for a replay: frozen start-up, a higher young threshold, restored."""

from __future__ import annotations

import gc

import pytest

from shadow.run.collector import REPLAY_YOUNG_THRESHOLD, replay_collector


def test_a_replay_freezes_start_up_and_raises_the_young_threshold_then_restores_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with replay_collector():
        assert gc.get_threshold() == (REPLAY_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed before the replay is left out
        gc.collect()  # collections still run, and leave the frozen objects alone
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_replay_that_raises_restores_the_collector_too() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), replay_collector():
        raise RuntimeError("the replay failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_garbage_made_during_the_replay_is_still_collected() -> None:
    class Cycle:
        pass

    with replay_collector():
        made = Cycle()
        made.me = made  # type: ignore[attr-defined]
        del made
        assert gc.collect() > 0
