"""Config loading: every error names the file and the key, before anything starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.errors import ConfigError
from shadow.replay.auth import Authenticator

GOOD = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
headers = { "X-Use-Rust-Scorer" = "true" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shadow.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (GOOD + "[replay]\nconcurency = 3\n", "replay.concurency", "unknown key"),
        (GOOD + "[replay]\nconcurrency = '3'\n", "replay.concurrency", "must be an integer"),
        (GOOD + "[replay]\nconcurrency = 0\n", "replay.concurrency", "at least 1"),
        ('[targets.primary]\ncommand = ["x"]\n', "targets.primary.url", "missing"),
        ('[targets.primary]\nurl = "ftp://x"\n', "targets.primary.url", "http://"),
        (
            '[targets.primary]\nurl = "http://h:1"\ncommand = "serve --port 1"\n',
            "targets.primary.command",
            "must be a list of strings, not a string",
        ),
        ('[targets.tertiary]\nurl = "http://h:1"\n', "targets.tertiary", "unknown target"),
        ('[targets.primary]\nurl = "http://h:0"\n', "targets.primary.url", "needs a command"),
        (
            GOOD + '[compare]\nnormalize = { "/a" = "fuzzy" }\n',
            "compare.normalize./a",
            "unknown normalizer",
        ),
        (GOOD + '[compare]\nignore = ["a/b"]\n', "compare.ignore", "must start with '/'"),
        (GOOD + '[auth.x]\ntype = "header"\n', "auth.x.value_env", "missing"),
        (
            GOOD + '[[compare.endpoint]]\npath = "/a"\nauth = "nope"\n',
            "compare.endpoint[0].auth",
            "no [auth.nope] profile",
        ),
        (
            GOOD + '[replay.lane]\nfrom = "path"\npattern = "("\n',
            "replay.lane.pattern",
            "not a valid regular expression",
        ),
        ("[targets\n", "", "not valid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert f": {key}: " in message if key else True
    assert problem in message


def test_unreadable_env_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace("[targets.candidate]", '[targets.candidate]\nenv_file = "nope.env"')
    )
    with pytest.raises(ConfigError, match=r"targets\.candidate\.env_file: cannot read env file"):
        load(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load("/nonexistent/shadow.toml")


def test_env_file_and_env_merge_and_placeholders(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("A=from-file\nB=from-file\n")
    path = write(
        tmp_path,
        """
env_file = "app.env"
[targets.primary]
url = "http://127.0.0.1:0"
command = ["{python}", "serve.py", "--port", "{port}"]
cwd = "api"
env_file = "app.env"
env = { B = "from-config" }
env_remove = ["CARGO_*"]
[targets.candidate]
url = "http://127.0.0.1:3000/"
""",
    )
    config = load(path)
    primary = config.targets["primary"]
    assert primary.env == {"A": "from-file", "B": "from-config"}
    assert primary.cwd == str(tmp_path / "api")
    assert primary.command[0].endswith("python") or "python" in primary.command[0]
    moved = primary.with_port(4321)
    assert moved.url == "http://127.0.0.1:4321" and moved.command[-1] == "4321"
    assert config.targets["candidate"].url == "http://127.0.0.1:3000"
    assert config.lookup_secret("A") == "from-file"


def test_endpoint_rules_merge_with_global(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD
        + """
[compare]
ignore = ["/**/id"]
[[compare.endpoint]]
name = "Score"
method = "get"
path = "/score/{scorer}/{address}"
ignore = ["/stamps"]
""",
    )
    from shadow.model import Record
    from shadow.replay.routes import Router

    router = Router(load(path))
    route = router.route(Record("GET", "/score/3/0xabc?x=1"))
    assert route.endpoint == "Score"
    assert route.rules.ignore == ("/**/id", "/stamps")
    other = router.route(Record("GET", "/items/12/0xdeadbeef"))
    assert other.endpoint == "GET /items/{int}/{hex}"
    assert other.rules.ignore == ("/**/id",)


def test_auth_secret_missing_is_a_config_error(tmp_path: Path) -> None:
    os.environ.pop("SHADOW_TEST_UNSET", None)
    path = write(tmp_path, GOOD + '[auth.k]\ntype = "jwt"\nsecret_env = "SHADOW_TEST_UNSET"\n')
    with pytest.raises(ConfigError, match=r"auth\.k\.secret_env: environment variable"):
        Authenticator(load(path))


def test_jwt_claims_from_vars_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jwt

    from shadow.model import Record
    from shadow.replay.auth import AuthError

    monkeypatch.setenv("SHADOW_TEST_SECRET", "a-test-secret-that-is-32-bytes-long!")
    path = write(
        tmp_path,
        GOOD
        + """
[auth.c]
type = "jwt"
secret_env = "SHADOW_TEST_SECRET"
claims = { did = "did:pkh:eip155:1:{address}", token_type = "access" }
""",
    )
    auth = Authenticator(load(path))
    record = Record("GET", "/", vars={"address": "0xabc"})
    name, value = auth.headers("c", record)
    assert name == "Authorization" and value.startswith("Bearer ")
    claims = jwt.decode(
        value.removeprefix("Bearer "), "a-test-secret-that-is-32-bytes-long!", algorithms=["HS256"]
    )
    assert claims["did"] == "did:pkh:eip155:1:0xabc" and claims["token_type"] == "access"
    assert {"exp", "iat", "jti"} <= set(claims)
    assert auth.headers("c", record) == (name, value)  # cached, not minted per request
    with pytest.raises(AuthError, match=r"vars\.address"):
        auth.headers("c", Record("GET", "/"))
