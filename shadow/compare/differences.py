"""The differences kept for one exchange: the first `cap` found, and how many there were."""

from __future__ import annotations

from collections.abc import Iterable

from shadow.model import Difference

__all__ = ["DEFAULT_MAX_DIFFERENCES", "Differences"]

DEFAULT_MAX_DIFFERENCES = 100


class Differences(list[Difference]):
    """The first `cap` differences found, in the order found; `total` counts all of them."""

    def __init__(self, cap: int = DEFAULT_MAX_DIFFERENCES) -> None:
        super().__init__()
        self.cap = cap
        self.total = 0

    def append(self, diff: Difference) -> None:
        self.total += 1
        if len(self) < self.cap:
            super().append(diff)

    def extend(self, diffs: Iterable[Difference]) -> None:
        for diff in diffs:
            self.append(diff)

    @property
    def full(self) -> bool:
        """Whether a difference found now would only be counted: a walk can skip building it."""
        return len(self) >= self.cap

    @property
    def left_out(self) -> int:
        return self.total - len(self)
