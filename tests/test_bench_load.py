"""Request bodies of the benchmark: the distinct-prompt series and its wrk script."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson

from tests.bench.load import Distinct, _Stream, requests_of, wrk_script
from tests.bench.workload import build_texts, distinct_body, generated_body, rule_spec


def test_distinct_body_puts_a_counter_after_the_prompt() -> None:
    texts = build_texts()
    series = distinct_body(texts, 500)
    first, second = orjson.loads(series.body(1)), orjson.loads(series.body(2))
    assert first["messages"][0]["content"] == f"{texts.prompt} #501"
    assert second["messages"][0]["content"] == f"{texts.prompt} #502"
    assert {k: v for k, v in first.items() if k != "messages"} == {
        "model": "deepseek-flash",
        "max_tokens": 100,
        "thinking": {"type": "disabled"},
        "stream": False,
    }


def test_wrk_script_sends_the_next_counter_between_the_halves(tmp_path: Path) -> None:
    series = Distinct(b'{"p": "a #', b'"}', 7_000)
    script = wrk_script(series, tmp_path)
    assert (tmp_path / "prefix.json").read_bytes() == series.prefix
    assert (tmp_path / "suffix.json").read_bytes() == series.suffix
    assert f"local counter = {series.start}\n" in script
    # Request n (from 1) carries start + n, as Distinct.body(n) does.
    assert "counter = counter + 1" in script
    assert "wrk.format(nil, nil, nil, prefix .. counter .. suffix)" in script
    assert re.search(r"^request = function\(\)$", script, re.MULTILINE)
    assert "wrk.body" not in script


def test_wrk_script_of_a_fixed_body_reads_it_from_a_file(tmp_path: Path) -> None:
    script = wrk_script(b'{"a": "]]"}', tmp_path)
    assert (tmp_path / "body.json").read_bytes() == b'{"a": "]]"}'
    assert f"wrk.body = slurp([[{tmp_path / 'body.json'}]])" in script
    assert "request = function" not in script


def test_asyncio_requests_never_repeat_a_distinct_body() -> None:
    make = requests_of("/chat/completions", Distinct(b"{", b"}", 10))
    sent = [make() for _ in range(3)]
    assert len(set(sent)) == 3
    for n, request in enumerate(sent, start=11):
        head, body = request.split(b"\r\n\r\n", 1)
        assert body == b"{%d}" % n
        assert f"Content-Length: {len(body)}".encode() in head


def test_asyncio_requests_repeat_a_fixed_body() -> None:
    make = requests_of("/chat/completions", b"{}")
    assert make() == make()


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def feed(*reads: bytes) -> tuple[_Stream, _Transport]:
    async def run() -> tuple[_Stream, _Transport]:
        stream, transport = _Stream(b"POST", stamp=False), _Transport()
        stream.connection_made(transport)  # type: ignore[arg-type]
        for data in reads:
            stream.data_received(data)
        return stream, transport

    return asyncio.run(run())


HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def test_a_stream_ends_at_its_last_chunk_even_if_the_server_keeps_the_connection() -> None:
    stream, transport = feed(HEAD, b"8\r\ndata: 1\n\r\n", b"8\r\ndata: 2\n\r\n0\r", b"\n\r\n")
    assert transport.closed and stream.events == 2
    stream.connection_lost(None)
    assert stream.failure is None


def test_a_stream_cut_before_its_last_chunk_is_a_failure() -> None:
    stream, transport = feed(HEAD, b"8\r\ndata: 1\n\r\n")
    assert not transport.closed
    stream.connection_lost(None)
    assert stream.failure == "body ended before the last chunk"


def test_an_error_status_is_a_failure_though_the_body_is_whole() -> None:
    stream, _ = feed(b"HTTP/1.1 500 Oops\r\n\r\n", b"2\r\n{}\r\n0\r\n\r\n")
    stream.connection_lost(None)
    assert stream.failure == "status b'HTTP/1.1 500'"


def test_no_canned_rule_matches_the_generated_body_and_one_matches_the_distinct() -> None:
    texts = build_texts()
    generated = orjson.loads(generated_body(texts))["messages"][0]["content"]
    distinct = orjson.loads(distinct_body(texts, 0).body(1))["messages"][0]["content"]
    rules = [re.compile(rule["prompt"]) for rule in rule_spec(texts)]
    assert not any(rule.search(generated) for rule in rules)
    assert [bool(rule.search(distinct)) for rule in rules] == [False, True]
