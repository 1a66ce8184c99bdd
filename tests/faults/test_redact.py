"""The redaction rules on plain values: headers, body paths, differences, and `[redact]` config."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.errors import ConfigError
from shadow.events.redact import Redactor
from shadow.model import REDACTED, Difference, Record, json_body_bytes

PATHS = ("/**/password", "/**/email")


def json_record(body: object, headers: tuple[tuple[str, str], ...] = ()) -> Record:
    return Record(
        "POST",
        "/x",
        headers,
        body=body,
        body_bytes=json_body_bytes(body),
        body_form="json",
    )


def test_headers_and_nested_body_fields_are_redacted_and_the_record_is_untouched() -> None:
    body = {"user": {"email": "a@b", "name": "ann"}, "list": [{"password": "p"}, 3]}
    record = json_record(body, (("Authorization", "Bearer t"), ("X-Other", "kept")))
    out = Redactor(paths=PATHS).request(record)
    assert out["headers"] == [["Authorization", REDACTED], ["X-Other", "kept"]]
    assert out["body"] == {
        "user": {"email": REDACTED, "name": "ann"},
        "list": [{"password": REDACTED}, 3],
    }
    assert record.body == {"user": {"email": "a@b", "name": "ann"}, "list": [{"password": "p"}, 3]}


def test_text_form_and_base64_bodies() -> None:
    form = Record(
        "POST",
        "/x",
        (("Content-Type", "application/x-www-form-urlencoded"),),
        body_bytes=b"password=p&x=1",
        body_form="text",
    )
    assert Redactor(paths=PATHS).request(form)["body_text"] == "password=%5BREDACTED%5D&x=1"
    text = Record("POST", "/x", body_bytes=b'{"email": "e"}', body_form="text")
    assert Redactor(paths=PATHS).request(text)["body_text"] == '{"email":"[REDACTED]"}'
    b64 = Record("POST", "/x", body_bytes=b'{"email": "e"}', body_form="b64")
    hidden = Redactor(paths=PATHS).request(b64)["body_b64"]
    assert base64.b64decode(hidden) == b'{"email":"[REDACTED]"}'
    binary = Record("POST", "/x", body_bytes=b"\xff\xfe", body_form="b64")
    assert Redactor(paths=PATHS).request(binary)["body_b64"] == "//4="


def test_differences_at_under_and_above_a_redacted_path() -> None:
    redactor = Redactor(paths=PATHS)
    at = redactor.diff(Difference("/user/email", "value", "a@b", "A@B"))
    assert (at["primary"], at["candidate"]) == (REDACTED, REDACTED)
    above = redactor.diff(Difference("/user", "missing", {"email": "a@b", "id": 1}, None))
    assert (above["primary"], above["candidate"]) == ({"email": REDACTED, "id": 1}, None)
    other = redactor.diff(Difference("/user/id", "value", 1, 2))
    assert (other["primary"], other["candidate"]) == (1, 2)
    body = redactor.diff(Difference("/", "body", {"bytes": 3, "excerpt": "a@b"}, None))
    assert body["primary"] == {"bytes": 3, "excerpt": REDACTED}


def test_header_differences() -> None:
    redactor = Redactor()
    cookie = redactor.diff(Difference("header:set-cookie", "header", "sid=1; Path=/", None))
    assert cookie["primary"] == REDACTED
    names = redactor.diff(Difference("header:set-cookie", "header", "sid, theme", "sid"))
    assert (names["primary"], names["candidate"]) == ("sid, theme", "sid")
    plain = redactor.diff(Difference("header:content-type", "header", "a", "b"))
    assert plain["primary"] == "a"


def test_deep_values_do_not_overflow() -> None:
    deep: object = {"email": "x"}
    for _ in range(5000):
        deep = [deep]
    out = Redactor(paths=PATHS).diff(Difference("/", "missing", deep, None))
    node = out["primary"]
    for _ in range(5000):
        node = node[0]
    assert node == {"email": REDACTED}


def test_redact_config_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[targets.primary]\nurl = "http://127.0.0.1:1"\n'
        '[redact]\nheaders = ["X-Token"]\npaths = ["/**/password"]\n'
    )
    loaded = load(config)
    assert loaded.redact.headers == ("x-token",) and loaded.redact.paths == ("/**/password",)
    config.write_text('[redact]\npaths = ["password"]\n')
    with pytest.raises(ConfigError, match=r"redact\.paths: 'password' is not a JSON Pointer"):
        load(config)
    config.write_text("[redact]\nvalues = []\n")
    with pytest.raises(ConfigError, match=r"redact\.values: unknown key"):
        load(config)


def test_differences_of_markup_text_and_form_bodies() -> None:
    redactor = Redactor(paths=PATHS)
    for path in ("/user/password", "/users/password[2]", "/form/@password", "/password"):
        out = redactor.diff(Difference(path, "value", "hunter2", "hunter3"))
        assert (out["primary"], out["candidate"]) == (REDACTED, REDACTED), path
    kept = redactor.diff(Difference("/user/name[2]", "value", "ann", "bob"))
    assert (kept["primary"], kept["candidate"]) == ("ann", "bob")
    line = redactor.diff(Difference("line:3", "extra", None, "password: hunter2"))
    assert (line["primary"], line["candidate"]) == (None, REDACTED)
    plain = Redactor().diff(Difference("line:3", "value", "a", "b"))  # no path: nothing to hide
    assert (plain["primary"], plain["candidate"]) == ("a", "b")
