"""Route patterns (`/score/{scorer}/*`), matched segment by segment in time linear in the path.

A regex with several `.*` backtracks: a 480 kB path against `/api/*/users/*/orders` took the
event loop 35 s. Here the path is split on `/` once and matched as a glob over segments, with
the greedy algorithm that keeps only the last `*` to go back to, so a route of k segments
costs at most k steps per path segment, whatever the path.

What a route matches (the query is never part of it, and one trailing `/` is optional):

- a literal segment: that exact text;
- `{name}`: exactly one segment, not empty;
- `*` as a whole segment: one or more segments, of any content (so anything, slashes too);
- a segment with `*` or `{name}` among other text (`*.json`, `v{n}`): a glob within that
  one segment (`*` any run of characters, `{name}` read as `*`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"\{[^}/]*\}")

_ANY = "{}"  # the token of `{name}`: one non-empty segment
_STAR = "*"  # a whole-segment `*`: any number of further segments (one is matched apart)


@dataclass(frozen=True, slots=True)
class RoutePattern:
    """A compiled route: `matches(path)` for a request target (path and query)."""

    route: str
    tokens: tuple[str, ...]

    @classmethod
    def compile(cls, route: str) -> RoutePattern:
        tokens: list[str] = []
        for segment in route.split("/"):
            if segment == "*":
                tokens += [_ANY_OR_EMPTY, _STAR]  # one segment, then any number more
            elif _PLACEHOLDER.fullmatch(segment):
                tokens.append(_ANY)
            else:  # `v{n}` within a segment is read as the glob `v*`
                tokens.append(_PLACEHOLDER.sub("*", segment))
        return cls(route, tuple(tokens))

    def matches(self, target: str) -> bool:
        path = target.partition("?")[0]
        segments = path.split("/")
        if _match(self.tokens, segments):
            return True
        # One trailing slash is optional: `/items/{id}` matches `/items/3/`.
        return len(segments) > 1 and segments[-1] == "" and _match(self.tokens, segments[:-1])


_ANY_OR_EMPTY = "\x00*"  # one segment of any content, empty included (`*` matches "")


def _token_matches(token: str, segment: str) -> bool:
    if token == _ANY:
        return segment != ""
    if token == _ANY_OR_EMPTY:
        return True
    if "*" in token:
        return glob_segment(token, segment)
    return token == segment


def _match(tokens: tuple[str, ...], segments: list[str]) -> bool:
    """Whether `segments` match `tokens`, where `_STAR` stands for any number of segments and
    every other token for exactly one: the greedy wildcard walk, going back only to the last
    star, which is exact when every other token matches exactly one item."""
    t = s = 0
    star_t, star_s = -1, 0
    while s < len(segments):
        if t < len(tokens) and tokens[t] == _STAR:
            star_t, star_s = t, s
            t += 1
        elif t < len(tokens) and _token_matches(tokens[t], segments[s]):
            t += 1
            s += 1
        elif star_t >= 0:
            star_s += 1
            t, s = star_t + 1, star_s
        else:
            return False
    while t < len(tokens) and tokens[t] == _STAR:
        t += 1
    return t == len(tokens)


def glob_segment(pattern: str, text: str) -> bool:
    """`*` (any run of characters) glob of one segment, the same greedy walk over characters."""
    p = i = 0
    star_p, star_i = -1, 0
    while i < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star_p, star_i = p, i
            p += 1
        elif p < len(pattern) and pattern[p] == text[i]:
            p += 1
            i += 1
        elif star_p >= 0:
            star_i += 1
            p, i = star_p + 1, star_i
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
