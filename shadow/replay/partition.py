"""Split a run's records into shards by lane, stably, so that N processes each replay one share.

Why it is built this way:

- A record's shard is `blake2b-64(key) mod N`, where the key is its lane (as the replay derives
  it: the record's `lane`, a header or a path regex, see `[replay] lane`), so every record of a
  lane lands in the same shard and a lane's order holds. blake2b rather than `hash()`: the
  result must be the same in every process and on every machine, and Python salts `hash()`.
- A record without a lane is keyed by its position in the input stream (the index among the
  items read in this pass, unreadable lines included). Every shard reads the same input in the
  same order, so positions agree across shards, and position spreads records evenly whatever
  their content. An unreadable line is keyed by its position too: exactly one shard reports it.
- Shards compose: worker `w` of `W` inside shard `i` of `N` is shard `i + N*w` of `N*W`, whose
  records are exactly those of shard `i` that hash to `w` in the next digit, so `--workers`
  on each of N machines still covers every record once.
"""

from __future__ import annotations

import hashlib
import re

from shadow.config.replay import LaneRule
from shadow.config.settings import Shard
from shadow.model import Record

_LANE = b"lane\0"
_POSITION = b"position\0"


def lane_of(record: Record, rule: LaneRule, regex: re.Pattern[str] | None) -> str | None:
    """The record's lane key under `rule`, or None when it has none."""
    if rule.source == "header":
        return record.header(rule.header)
    if rule.source == "path" and regex is not None:
        match = regex.search(record.path)
        return match.group(match.lastindex or 0) if match else None
    return record.lane


def shard_of(key: bytes, count: int) -> int:
    """The shard of a key: stable across processes, machines and Python versions."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


class Partition:
    """Decides which items of the input stream belong to one shard."""

    def __init__(self, shard: Shard, rule: LaneRule) -> None:
        self.shard = shard
        self.rule = rule
        self.regex = re.compile(rule.pattern) if rule.pattern else None

    def owns(self, item: object, position: int) -> bool:
        """Whether the item at `position` of the stream (a Record or an unreadable line)
        is this shard's."""
        if self.shard.count == 1:
            return True
        return shard_of(self.key(item, position), self.shard.count) == self.shard.index

    def key(self, item: object, position: int) -> bytes:
        lane = lane_of(item, self.rule, self.regex) if isinstance(item, Record) else None
        if lane is not None:
            return _LANE + lane.encode("utf-8", "surrogatepass")
        return _POSITION + str(position).encode("ascii")
