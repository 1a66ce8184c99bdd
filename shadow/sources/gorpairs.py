"""GoReplay `.gor` captures with their answers: each type-2 payload (the response the capture
saw) paired with its type-1 request by id, for `shadow run --recorded` and `shadow convert
--keep-responses`. Type 3 (a response GoReplay got when it replayed) is never compared.

Requests keep their order: a request waits until its response comes (GoReplay writes it
shortly after), and the requests behind it wait with it. A response may come before its
request, so one whose request has not come yet waits too. Both waits are bounded
(`MAX_WAITING` payloads), so memory stays flat on a capture whose responses are missing:
past the bound, the first request goes on without an answer (an input error under
`--recorded`, naming it), and the oldest early response becomes a problem. Nothing is lost
or counted twice: a second response to one request, and a response whose request is not in
the capture, are each a problem naming the file and the line of the payload.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from shadow.model import InputProblem, Item, Record, Response
from shadow.sources import wire
from shadow.sources.answers import answer_from_http
from shadow.sources.gor import RawAnswer, header_lines, payloads

MAX_WAITING = 10_000  # requests waiting for their response, and responses for their request
_REMEMBERED = 4 * MAX_WAITING  # ids already paired, to tell a second response from an orphan


def read_paired(stream: BinaryIO, source: str, max_record_bytes: int) -> Iterator[Item]:
    """A record per request payload, with its recorded answer as `response`."""
    return pair(payloads(stream, source, max_record_bytes, answers=True))


@dataclasses.dataclass(slots=True)
class _Held:
    record: Record
    answer: RawAnswer | None = None


class _Pairs:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: OrderedDict[str, _Held] = OrderedDict()  # request id -> its request
        self.early: OrderedDict[str, RawAnswer] = OrderedDict()  # responses before requests
        # Requests gone on: id -> the line of their response, 0 for one that went without.
        self.done: OrderedDict[str, int] = OrderedDict()

    def request(self, record: Record) -> Iterator[Item]:
        key = record.id or ""
        if key in self.waiting:  # an id used twice: the first goes on as it stands
            yield self._released(self.waiting.pop(key))
        held = _Held(record, self.early.pop(key, None))
        self.waiting[key] = held
        yield from self._flush()

    def answer(self, answer: RawAnswer) -> Iterator[Item]:
        held = self.waiting.get(answer.id)
        if held is not None and held.answer is None:
            held.answer = answer
            yield from self._flush()
            return
        first = held.answer.line if held is not None and held.answer else self.done.get(answer.id)
        if first is None and answer.id in self.early:
            first = self.early[answer.id].line
        if first is not None:
            message = f"a second response to request {answer.id} (the first, line {first}, is kept)"
            if first == 0:
                message = (
                    f"the response to request {answer.id} came more than {self.limit} requests "
                    "after it, which went on without it"
                )
            yield _problem(answer, message)
            return
        self.early[answer.id] = answer
        if len(self.early) > self.limit:
            yield _orphan(self.early.popitem(last=False)[1])

    def end(self) -> Iterator[Item]:
        while self.waiting:
            yield self._released(self.waiting.popitem(last=False)[1])
        for answer in self.early.values():
            yield _orphan(answer)
        self.early.clear()

    def _flush(self) -> Iterator[Item]:
        while self.waiting:
            held = next(iter(self.waiting.values()))
            if held.answer is None and len(self.waiting) <= self.limit:
                return
            self.waiting.popitem(last=False)
            yield self._released(held)

    def _released(self, held: _Held) -> Record:
        record, answer = held.record, held.answer
        self.done[record.id or ""] = answer.line if answer is not None else 0
        if len(self.done) > _REMEMBERED:
            self.done.popitem(last=False)
        if answer is None:
            return record  # `--recorded` says it has no answer to compare with
        if answer.problem:
            return dataclasses.replace(record, response_problem=_where(answer, answer.problem))
        try:
            return dataclasses.replace(record, response=_response(answer))
        except ValueError as exc:
            return dataclasses.replace(record, response_problem=_where(answer, str(exc)))


def pair(items: Iterable[Item | RawAnswer], limit: int = MAX_WAITING) -> Iterator[Item]:
    """Records with their answers, in the order of the requests; problems as they come."""
    pairs = _Pairs(limit)
    for item in items:
        if isinstance(item, RawAnswer):
            yield from pairs.answer(item)
        elif isinstance(item, Record):
            yield from pairs.request(item)
        else:
            yield item
    yield from pairs.end()


def _response(answer: RawAnswer) -> Response:
    status_line, _, lines = answer.head.partition(b"\n")
    status_line = status_line.rstrip(b"\r")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line[:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status: {status}")
    headers = header_lines(lines) if lines else []
    if answer.body is not None and wire.has_header(headers, "transfer-encoding"):
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]  # de-chunked
    return answer_from_http(status, tuple(headers), answer.body or b"", answer.latency_ns / 1e6)


def _where(answer: RawAnswer, message: str) -> str:
    return f"its response (line {answer.line}): {message}"


def _problem(answer: RawAnswer, message: str) -> InputProblem:
    return InputProblem(answer.source, answer.line, message)


def _orphan(answer: RawAnswer) -> InputProblem:
    return _problem(answer, f"a response to request {answer.id}, which is not in the capture")
