"""`[[replay.capture]]` and `[replay] correlate`: read, checked (file and key named), resolved,
and usable as `{NAME}` in `[synth]` scenario steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow.config.load import load
from shadow.config.resolved import resolved
from shadow.errors import ConfigError
from shadow.model import Record
from shadow.sources import synth

TARGETS = """
[targets.primary]
url = "http://127.0.0.1:8002"
[targets.candidate]
url = "http://127.0.0.1:3000"
"""
CAPTURE = """
[[replay.capture]]
name = "order_id"
method = "post"
path = "/orders"
pointer = "/id"

[[replay.capture]]
name = "etag"
endpoint = "orders"
header = "ETag"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shadow.toml"
    path.write_text(TARGETS + text)
    return path


def test_captures_are_read_and_resolved(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, '[replay]\ncorrelate = "auto"\ncorrelate_min_length = 8\n' + CAPTURE)
    )
    correlate = config.replay.correlate
    assert (correlate.mode, correlate.min_length, correlate.names) == (
        "auto",
        8,
        ("order_id", "etag"),
    )
    first, second = correlate.captures
    assert first.applies(Record("POST", "/orders/"), "anything")
    assert not first.applies(Record("GET", "/orders"), "anything")
    assert second.applies(Record("GET", "/x"), "orders") and second.place == "header:etag"
    replay = resolved(config)["replay"]
    assert replay["correlate"] == "auto"
    assert replay["capture"] == [
        {"name": "order_id", "method": "POST", "path": "/orders", "pointer": "/id"},
        {"name": "etag", "endpoint": "orders", "header": "ETag"},
    ]


def test_the_defaults() -> None:
    from shadow.config.replay import ReplayConfig

    correlate = ReplayConfig().correlate
    assert (correlate.mode, correlate.min_length, correlate.captures) == ("rules", 16, ())
    assert not correlate.active  # rules without a capture: nothing to do


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[replay]\ncorrelate = "on"\n', "replay.correlate", "must be one of"),
        ("[replay]\ncorrelate_min_length = 0\n", "replay.correlate_min_length", "at least 1"),
        ("[replay]\ncapture = 3\n", "replay.capture", "a list of tables"),
        (
            '[[replay.capture]]\npath = "/o"\npointer = "/id"\n',
            "replay.capture[0].name",
            "missing",
        ),
        (
            '[[replay.capture]]\nname = "1x"\npath = "/o"\npointer = "/id"\n',
            "replay.capture[0].name",
            "letters, digits",
        ),
        (
            '[[replay.capture]]\nname = "x"\npointer = "/id"\n',
            "replay.capture[0].endpoint",
            "one of them",
        ),
        (
            '[[replay.capture]]\nname = "x"\npath = "o"\npointer = "/id"\n',
            "replay.capture[0].path",
            "starting with '/'",
        ),
        (
            '[[replay.capture]]\nname = "x"\npath = "/o"\npointer = "/id"\nheader = "ETag"\n',
            "replay.capture[0].pointer",
            "one of them",
        ),
        (
            '[[replay.capture]]\nname = "x"\npath = "/o"\npointer = "id"\n',
            "replay.capture[0].pointer",
            "JSON Pointer",
        ),
        (
            '[[replay.capture]]\nname = "x"\npath = "/o"\nheader = "E Tag"\n',
            "replay.capture[0].header",
            "not a header name",
        ),
        (
            '[[replay.capture]]\nname = "x"\npath = "/o"\nheader = "ETag"\nfrom = 1\n',
            "replay.capture[0].from",
            "unknown key",
        ),
        (
            CAPTURE.replace('"etag"', '"order_id"'),
            "replay.capture[1].name",
            "used twice",
        ),
        (
            CAPTURE + '[synth.vars]\norder_id = "x"\n[[synth.template]]\npath = "/"\n',
            "synth.vars.order_id",
            "also a [[replay.capture]] name",
        ),
        (
            CAPTURE + '[[synth.template]]\npath = "/orders/{order}"\n',
            "synth.template[0].path",
            "{order} names no variable",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert f": {key}: " in message
    assert problem in message


def test_a_scenario_step_names_a_capture(tmp_path: Path) -> None:
    text = (
        CAPTURE
        + """
[synth.vars]
item = { gen = "choice", values = ["book"] }

[[synth.template]]
lane = "client-{item}"
[[synth.template.step]]
method = "POST"
path = "/orders"
body = { item = "{item}" }
[[synth.template.step]]
method = "PATCH"
path = "/orders/{order_id}"
headers = { If-Match = "{etag}" }
body = { id = "{order_id}", note = "order {order_id}" }
"""
    )
    config = load(write(tmp_path, text))
    assert config.synth is not None
    records = [r for r in synth.generate(config.synth, 1, 2) if isinstance(r, Record)]
    # The capture's value is not known before the replay: the placeholder stays for it.
    assert records[1].path == "/orders/{order_id}"
    assert records[1].header("If-Match") == "{etag}"
    assert records[1].body == {"id": "{order_id}", "note": "order {order_id}"}
    assert records[1].vars == {"item": "book"}
