"""Route patterns: what each piece matches, and a cost linear in the path whatever it holds."""

from __future__ import annotations

import pytest

from shadow.config import routepattern
from shadow.config.routepattern import RoutePattern, glob_segment


@pytest.mark.parametrize(
    ("route", "path", "matches"),
    [
        ("/items/{id}", "/items/3", True),
        ("/items/{id}", "/items/3/", True),  # one trailing slash is optional
        ("/items/{id}", "/items/3?x=1", True),  # the query is never part of the route
        ("/items/{id}", "/items/", False),  # `{name}` is one segment, not empty
        ("/items/{id}", "/items/?q=1", False),
        ("/items/{id}", "/items/3/4", False),
        ("/api/*", "/api/", True),  # `*` matches anything, nothing included
        ("/api/*", "/api/a/b/c", True),  # slashes too
        ("/api/*", "/api", False),
        ("/api/*/users/*/orders", "/api/1/users/2/orders", True),
        ("/api/*/users/*/orders", "/api/a/b/users/c/d/orders?x", True),
        ("/api/*/users/*/orders", "/api/1/users/2/order", False),
        ("/api/*/users/*/orders", "/api/users/orders", False),
        ("/files/*.json", "/files/a.json", True),
        ("/files/*.json", "/files/a/b.json", False),  # within a segment, a glob of that one
        ("/v{n}/x", "/v2/x", True),
        ("/score", "/score", True),
        ("/score", "/scores", False),
    ],
)
def test_what_a_route_matches(route: str, path: str, matches: bool) -> None:
    assert RoutePattern.compile(route).matches(path) is matches


def test_glob_within_a_segment() -> None:
    assert glob_segment("a*b*c", "aXXbYYc")
    assert not glob_segment("a*b*c", "aXXbYY")
    assert glob_segment("*", "")


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ("/api/*/users/*/orders", "/api/" + "a/" * 240_000),  # the 480 kB path of the report
        ("/x/*/*/*/*/y", "/x" + "/users" * 80_000),
        ("/files/*a*b*c", "/files/" + "a" * 480_000),
    ],
)
def test_a_huge_path_that_does_not_match_costs_a_linear_walk(
    route: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backtracking regex took 35 s on the first of these. Counted in steps, not timed:
    # at most (route tokens) x (path segments) comparisons.
    real = routepattern._token_matches
    steps = 0

    def counted(token: str, segment: str) -> bool:
        nonlocal steps
        steps += 1
        return real(token, segment)

    monkeypatch.setattr(routepattern, "_token_matches", counted)
    pattern = RoutePattern.compile(route)
    assert not pattern.matches(path)
    segments = path.count("/") + 1
    assert steps <= 2 * len(pattern.tokens) * segments
