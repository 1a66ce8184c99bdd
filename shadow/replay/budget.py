"""The memory all response bodies may take at once, across every exchange in flight.

`max_body_bytes` bounds one body; with many exchanges in flight, each of two or three targets
streaming a body up to it, the sum could still reach gigabytes. Every body's bytes are taken
from one budget (`max_bodies_bytes`) as they arrive, and given back once the exchange is
finished (compared, counted, written). A body whose next bytes find the budget spent is not
read further: that side fails with the error kind `over_budget`, and the run goes on. Nothing
waits for budget, so no set of half-read bodies can wait on each other forever.
"""

from __future__ import annotations


class BodyBudget:
    """Bytes of response bodies held in memory, out of `total_bytes`."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.held_bytes = 0
        self.peak_bytes = 0

    def take(self, size: int) -> bool:
        """Take `size` bytes if that many are left; False (nothing taken) if not."""
        if self.held_bytes + size > self.total_bytes:
            return False
        self.held_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        return True

    def give(self, size: int) -> None:
        self.held_bytes -= size
