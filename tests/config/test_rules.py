"""The verdict tables of a config ([compare], [noise], [thresholds]) and endpoint routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.config.verdict import Limits, NoiseConfig
from shadow.errors import ConfigError
from shadow.model import Record
from shadow.replay.routes import Router, infer_template

GOOD = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shadow.toml"
    path.write_text(GOOD + text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[thresholds]\nfail_on = ["typo"]\n', "thresholds.fail_on", "unknown kind 'typo'"),
        ('[thresholds]\nfail_on = "type"\n', "thresholds.fail_on", "not a string"),
        ("[thresholds]\nmismatch_rate = 5\n", "thresholds.mismatch_rate", "at most 1"),
        ("[thresholds]\nerror_rate = -1\n", "thresholds.error_rate", "at least 0"),
        (
            '[thresholds.endpoint."Score"]\nmismatch_rate = "high"\n',
            "thresholds.endpoint.Score.mismatch_rate",
            "must be a number",
        ),
        (
            '[thresholds.endpoint."Score"]\nmax = 1\n',
            "thresholds.endpoint.Score.max",
            "unknown key",
        ),
        ("[thresholds]\nendpoint = 3\n", "thresholds.endpoint", "must be a table"),
        ("[noise]\nenabled = 1\n", "noise.enabled", "true or false"),
        ("[noise]\nmin_samples = 0\n", "noise.min_samples", "at least 1"),
        ("[noise]\nmin_rate = 2\n", "noise.min_rate", "at most 1"),
        ("[noise]\nsample = 1.5\n", "noise.sample", "at most 1"),
        ("[noise]\nratoi = 2\n", "noise.ratoi", "unknown key"),
        (
            '[compare]\nnormalize = { "/a" = "datetime:ns" }\n',
            "compare.normalize./a",
            "unknown normalizer",
        ),
        ('[compare]\nunordered = { "/items" = 1 }\n', "compare.unordered./items", "a string"),
        ('[compare]\nunordered = { "items" = "id" }\n', "compare.unordered", "start with '/'"),
        ('[compare]\nnormalize = { "a" = "trim" }\n', "compare.normalize", "start with '/'"),
        ("[compare]\nrelative_tolerance = -0.1\n", "compare.relative_tolerance", "at least 0"),
        ('[compare]\nignore_headers = "date"\n', "compare.ignore_headers", "not a string"),
        ('[compare]\nignore = ["line:0"]\n', "compare.ignore", "line:12"),
        ("[compare]\nignore_whitespace = 1\n", "compare.ignore_whitespace", "true or false"),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_header = { "X-T" = 1 }\n',
            "compare.endpoint[0].match_header.X-T",
            "must be a string",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_header = { "X T" = "a" }\n',
            "compare.endpoint[0].match_header.X T",
            "not a header name",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_body = { "method" = "get" }\n',
            "compare.endpoint[0].match_body.method",
            "JSON Pointer",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_body = { "/m" = ["a"] }\n',
            "compare.endpoint[0].match_body./m",
            "a string, a number or a boolean",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_body = "/m"\n',
            "compare.endpoint[0].match_body",
            "must be a table",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nmatch_name = 3\n',
            "compare.endpoint[0].match_name",
            "must be a string",
        ),
        (
            '[[compare.endpoint]]\npath = "/"\nsafe = "yes"\n',
            "compare.endpoint[0].safe",
            "true or false",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_the_new_keys_are_read(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
[compare]
unordered = { "/items" = "id", "/tags" = "" }
normalize = { "/**/name" = "trim", "/t" = "sorted", "/m" = "null_is_missing", "/v" = "volatile" }
headers = ["*"]
ignore_headers = ["X-Runtime"]
tolerance = 0.5
relative_tolerance = 0.01
[noise]
repeat_methods = ["get", "put"]
min_samples = 3
[thresholds]
fail_on = ["status", "type"]
[thresholds.endpoint."GTC Stake"]
mismatch_rate = 0.5
""",
        )
    )
    rules = config.compare
    assert rules.unordered_keys == (("/items", "id"),) and rules.unordered == ("/tags",)
    assert rules.ignore_headers == ("x-runtime",) and rules.headers == ("*",)
    assert (rules.tolerance, rules.relative_tolerance) == (0.5, 0.01)
    assert config.noise == NoiseConfig(repeat_methods=("GET", "PUT"), min_samples=3)
    assert config.thresholds.fail_on == ("status", "type")
    assert config.thresholds.endpoints == {"GTC Stake": Limits(mismatch_rate=0.5)}
    assert load(write(tmp_path, "")).noise.enabled is None  # on: by repeat, or a secondary


def test_the_verdict_keys_are_read(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
[noise]
enabled = false
full_pairs = 5
sample = 0.5
[thresholds]
both_failed_rate = 0.9
[thresholds.endpoint."Score"]
both_failed_rate = 1.0
[[compare.endpoint]]
path = "/missing/{id}"
expect_status = 404
""",
        )
    )
    assert config.noise == NoiseConfig(enabled=False, full_pairs=5, sample=0.5)
    assert config.thresholds.both_failed_rate == 0.9
    assert config.thresholds.endpoints["Score"] == Limits(both_failed_rate=1.0)
    assert Router(config).route(Record("GET", "/missing/3")).rules.expect_status == 404
    assert load(write(tmp_path, "")).thresholds.both_failed_rate == 0.5  # more than half fails
    with pytest.raises(ConfigError, match=r"endpoint\[0\]\.expect_status: must be an HTTP status"):
        load(write(tmp_path, '[[compare.endpoint]]\npath = "/x"\nexpect_status = 999\n'))
    with pytest.raises(ConfigError, match=r"compare\.expect_status: unknown key"):
        load(write(tmp_path, "[compare]\nexpect_status = 404\n"))  # only per endpoint


def test_an_endpoints_headers_replace_the_global_list(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
[compare]
headers = ["content-type", "etag"]
[[compare.endpoint]]
path = "/empty/{n}"
headers = []
[[compare.endpoint]]
path = "/files/{n}"
headers = ["content-disposition"]
[[compare.endpoint]]
path = "/plain/{n}"
ignore = ["/x"]
""",
        )
    )
    router = Router(config)
    assert router.route(Record("GET", "/empty/1")).rules.headers == ()  # none compared here
    assert router.route(Record("GET", "/files/1")).rules.headers == ("content-disposition",)
    assert router.route(Record("GET", "/plain/1")).rules.headers == ("content-type", "etag")
    assert router.route(Record("GET", "/other")).rules.headers == ("content-type", "etag")


def test_every_matching_block_adds_its_rules(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
[compare]
ignore = ["/g"]
[[compare.endpoint]]
name = "Stamps"
path = "/stamps/{address}"
ignore = ["/a"]
auth = ""
[[compare.endpoint]]
name = "learned later"
method = "POST"
path = "/stamps/{hex}"
ignore = ["/b"]
normalize = { "/at" = "volatile" }
""",
        )
    )
    router = Router(config)
    post = router.route(Record("POST", "/stamps/0xab12"))
    assert post.endpoint == "Stamps" and post.rules.ignore == ("/g", "/a", "/b")
    assert post.rules.normalize == (("/at", "volatile"),)
    assert (post.method, post.template) == ("POST", "/stamps/{address}")
    get = router.route(Record("GET", "/stamps/0xab12"))
    assert get.rules.ignore == ("/g", "/a") and get.method == "GET"
    named = router.route(Record("POST", "/stamps/0xab12", name="Add"))
    assert named.endpoint == "Add" and named.rules is post.rules  # merged once, then cached
    other = router.route(Record("GET", "/users/42?x=1"))
    assert (other.endpoint, other.template) == ("GET /users/{int}", "/users/{int}")


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/score/335/0xf129e2be583ff1e53e30400af5ad6336b17a6356?x=1", "/score/{int}/{hex}"),
        ("/users/550e8400-e29b-41d4-a716-446655440000", "/users/{uuid}"),
        ("/blobs/3f786850e387550fdab836ed7e6dc881de23001b", "/blobs/{hex}"),
        ("/tokens/eyJhbGciOiJIUzI1NiJ9abc123XYZ=", "/tokens/{token}"),
        ("/v2/items", "/v2/items"),
        ("/api/registry/-7", "/api/registry/{int}"),
        ("/deadbeef", "/deadbeef"),  # short, no digit: a word
    ],
)
def test_inferred_templates(path: str, template: str) -> None:
    assert infer_template(path) == template


RPC = """
[[compare.endpoint]]
name = "GetItem"
method = "POST"
path = "/"
match_header = { "X-Amz-Target" = "Store.GetItem" }
unordered = ["/items"]
safe = true
[[compare.endpoint]]
method = "POST"
path = "/rpc"
match_body = { "/method" = "list", "/params/0" = 2, "/v2" = true }
[[compare.endpoint]]
path = "/named"
match_name = "Special"
ignore = ["/x"]
[[compare.endpoint]]
method = "POST"
path = "/gql"
"""


def rpc(method: str, path: str, **fields: object) -> Record:
    return Record(method, path, **fields)


def test_blocks_match_a_header_a_body_member_or_the_record_name(tmp_path: Path) -> None:
    router = Router(load(write(tmp_path, RPC)))
    get = router.route(rpc("POST", "/", headers=(("x-amz-target", "Store.GetItem"),)))
    assert (get.endpoint, get.rules.unordered, get.safe) == ("GetItem", ("/items",), True)
    assert get.match == (("header", "X-Amz-Target", "Store.GetItem"),)
    put = router.route(rpc("POST", "/", headers=(("X-Amz-Target", "Store.PutItem"),)))
    assert put.endpoint == "POST / (X-Amz-Target=Store.PutItem)"  # no block: inferred
    assert put.rules.unordered == () and put.safe is None
    body = {"method": "list", "params": [2], "v2": True}
    listed = router.route(rpc("POST", "/rpc", body=body, body_form="json"))
    assert listed.endpoint == "POST /rpc (/method=list, /params/0=2, /v2=true)"
    as_bytes = rpc("POST", "/rpc", body_bytes=b'{"method": "list", "params": [2], "v2": true}')
    assert router.route(as_bytes).endpoint == listed.endpoint
    for other in ({**body, "v2": 1}, {**body, "params": ["2"]}, {"method": "list"}):
        routed = router.route(rpc("POST", "/rpc", body=other, body_form="json"))
        assert routed.endpoint == "POST /rpc"  # JSON equality: 1 is not true, "2" is not 2
    named = router.route(rpc("GET", "/named", name="Special"))
    assert named.rules.ignore == ("/x",) and named.match == (("name", "", "Special"),)
    assert router.route(rpc("GET", "/named", name="Other")).rules.ignore == ()


def test_inferred_names_carry_the_operation_of_well_known_rpc_styles(tmp_path: Path) -> None:
    router = Router(load(write(tmp_path, RPC)))
    jsonrpc = {"jsonrpc": "2.0", "method": "sum", "id": 1}
    assert router.route(rpc("POST", "/x", body=jsonrpc, body_form="json")).endpoint == (
        "POST /x (/method=sum)"
    )
    graphql = {"query": "query Q { a }", "operationName": "Q"}
    routed = router.route(rpc("POST", "/gql", body=graphql, body_form="json"))
    assert routed.endpoint == "POST /gql (/operationName=Q)"  # an unnamed block: inferred too
    assert routed.match == (("body", "/operationName", "Q"),)
    soap = rpc("POST", "/ws", headers=(("SOAPAction", '"urn:Get"'),))
    assert router.route(soap).endpoint == 'POST /ws (SOAPAction="urn:Get")'
    assert router.route(rpc("POST", "/x", body={"method": "m"}, body_form="json")).endpoint == (
        "POST /x"  # a "method" member without "jsonrpc" is no operation
    )


def test_shadow_check_shows_what_picks_an_endpoint(tmp_path: Path) -> None:
    from shadow.config.resolved import resolved

    [first, second, third, _] = resolved(load(write(tmp_path, RPC)))["compare"]["endpoint"]
    assert first["match_header"] == {"X-Amz-Target": "Store.GetItem"} and first["safe"] is True
    assert second["match_body"] == {"/method": "list", "/params/0": 2, "/v2": True}
    assert third["match_name"] == "Special" and "safe" not in third  # unset: by method
