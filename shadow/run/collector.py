"""The garbage collector during a replay: start-up's objects frozen, young collections rarer."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Allocations (net of frees) between two young collections while replaying, against
# CPython's 700: a pair allocates hundreds of short-lived containers (requests, headers,
# futures, events), most gone before any collection looks at them. Bounded memory: at most
# this many young objects wait for the collector, a few MB.
REPLAY_YOUNG_THRESHOLD = 50_000


@contextlib.contextmanager
def replay_collector() -> Iterator[None]:
    """Inside: every object made so far (modules, config, the servers' state) is left out of
    every collection (`gc.freeze`), and the young generation is collected every
    REPLAY_YOUNG_THRESHOLD allocations. On leaving, both are undone: the thresholds are
    restored, and the frozen objects go back to the oldest generation (garbage among them is
    collected as usual then)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], REPLAY_YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
