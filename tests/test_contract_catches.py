"""The contract suite can fail: run it (through pytester, on its live path) against servers that
break one rule each, and against a correct one.

A broken server is the real mock app behind a small ASGI wrapper that rewrites one thing in
the finished response (drops `[DONE]`, bends a usage count, swaps the error envelope, ...), so
everything else stays correct and the failure can be pinned to the rule that was broken.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Imported here so that pytester's in-process runs find them loaded, not import them each time.
import hypothesis_jsonschema  # noqa: F401
import openai  # noqa: F401
import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.app import create_app
from mockserver.dialects import DIALECTS
from mockserver.drift import examine
from mockserver.server import MockServer
from mockserver.settings import Settings

CONTRACT = Path(__file__).resolve().parents[1] / "contract_tests"
KEY = "sk-dummy-contract-key-7f3a"  # what the live path reads from the dialect's key variable
DONE = b"data: [DONE]\n\n"
Json = dict[str, Any]
Rewrite = Callable[[int, str, bytes], bytes]  # (status, content type, body) → new body


# ----------------------------------------------------------------------------- servers


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """uvicorn on 127.0.0.1 in a thread; the socket listens before the thread starts, so the
    first request waits in the backlog instead of anyone polling for readiness."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "test server still running 10 s after shutdown"


def rewriting(app: ASGIApp, rewrite: Rewrite) -> ASGIApp:
    """`app` with every finished HTTP response body passed through `rewrite`."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await app(scope, receive, capture)
        headers = [
            (name, value)
            for name, value in start.get("headers", [])
            if name.lower() not in (b"content-length", b"transfer-encoding")
        ]
        content_type = dict(headers).get(b"content-type", b"").decode()
        new = rewrite(start["status"], content_type, bytes(body))
        headers.append((b"content-length", str(len(new)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": new})

    return wrapped


def mock_app(dialect: str = "deepseek") -> ASGIApp:
    app: ASGIApp = create_app(Settings(port=0, dialect=dialect, api_keys=(KEY,)))
    return app


# ------------------------------------------------------------------------------ faults


def frames(body: bytes) -> list[bytes]:
    return [frame + b"\n\n" for frame in body.split(b"\n\n") if frame]


def on_stream(change: Callable[[list[bytes]], list[bytes]]) -> Rewrite:
    def rewrite(status: int, content_type: str, body: bytes) -> bytes:
        if not content_type.startswith("text/event-stream"):
            return body
        return b"".join(change(frames(body)))

    return rewrite


def on_chunks(change: Callable[[list[Json]], None]) -> Rewrite:
    """Parse the chunks of each stream, let `change` edit them, write them back."""

    def edit(stream: list[bytes]) -> list[bytes]:
        chunks = [json.loads(f[len(b"data: ") :]) for f in stream if f.startswith(b"data: {")]
        change(chunks)
        kept = [f for f in stream if not f.startswith(b"data: {")]  # keep-alives and [DONE]
        return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + kept

    return on_stream(edit)


def on_json(status: Callable[[int], bool], change: Callable[[int, bytes], bytes]) -> Rewrite:
    def rewrite(code: int, content_type: str, body: bytes) -> bytes:
        return change(code, body) if "json" in content_type and status(code) else body

    return rewrite


def _wrong_object(chunks: list[Json]) -> None:
    chunks[1]["object"] = "chat.completion"


def _two_finishes(chunks: list[Json]) -> None:
    chunks[0]["choices"][0]["finish_reason"] = "stop"


def _total_off_by_one(code: int, body: bytes) -> bytes:
    data = json.loads(body)
    if "usage" not in data:
        return body
    data["usage"]["total_tokens"] += 1
    return json.dumps(data).encode()


def _prompt_tokens_off_by_one(code: int, body: bytes) -> bytes:
    """Still adds up (prompt + completion = total, hit + miss = prompt), but counts one token
    more than DeepSeek's tokenizer and template: what a stale template looks like."""
    data = json.loads(body)
    usage = data.get("usage")
    if not usage:
        return body
    for key in ("prompt_tokens", "total_tokens", "prompt_cache_miss_tokens"):
        if key in usage:
            usage[key] += 1
    return json.dumps(data).encode()


def _nestjs_envelope(code: int, body: bytes) -> bytes:
    return json.dumps({"message": "Bad Request", "statusCode": code}).encode()


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    rewrite: Rewrite
    files: tuple[str, ...]  # the contract test files to run against it
    caught_by: str  # the contract test that must fail
    says: str  # a piece of its failure message


FAULTS = [
    Fault(
        "stream without [DONE]",
        on_stream(lambda stream: [f for f in stream if f != DONE]),
        ("test_stream.py",),
        "test_done_comes_last_and_exactly_once",
        "the stream ended without data: [DONE]",
    ),
    Fault(
        "[DONE] twice",
        on_stream(lambda stream: [*stream, DONE]),
        ("test_stream.py",),
        "test_done_comes_last_and_exactly_once",
        "data: [DONE] came 2 times",
    ),
    Fault(
        "chunk with the wrong object",
        on_chunks(_wrong_object),
        ("test_stream.py",),
        "test_every_chunk_before_done_is_schema_valid",
        "$.object: 'chat.completion.chunk' was expected",
    ),
    Fault(
        "two finish_reasons",
        on_chunks(_two_finishes),
        ("test_stream.py",),
        "test_exactly_one_finish_reason",
        "choice 0 got 2 finish_reasons",
    ),
    Fault(
        "usage that does not add up",
        on_json(lambda code: code == 200, _total_off_by_one),
        ("test_chat.py",),
        "test_usage_adds_up",
        "total_tokens",
    ),
    Fault(
        "prompt_tokens the template does not predict",
        on_json(lambda code: code == 200, _prompt_tokens_off_by_one),
        ("test_chat.py",),
        "test_prompt_tokens_are_what_the_tokenizer_and_template_predict",
        "prompt_tokens 12, but DeepSeek's tokenizer and the deepseek-flash template predict 11",
    ),
    Fault(
        "error in the wrong envelope",
        on_json(lambda code: code >= 400, _nestjs_envelope),
        ("test_errors.py", "test_endpoints.py"),
        "test_error_has_the_documented_status_and_envelope",
        "is not in the DeepSeek API error envelope",
    ),
]


# ------------------------------------------------------------------------------ runs


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment for the inner run: no real keys, no stray contract settings."""
    for dialect in DIALECTS.values():
        monkeypatch.delenv(dialect.key_env, raising=False)
    for name in ("CONTRACT_DIALECT", "CONTRACT_MODEL", "CONTRACT_MAX_REQUESTS", "CONTRACT_ERA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONTRACT_EXAMPLES", "2")
    return monkeypatch


def run_live(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, base_url: str, dialect: str, *files: str
) -> pytest.RunResult:
    env.setenv("CONTRACT_BASE_URL", base_url)
    paths = [str(CONTRACT / name) for name in files] or [str(CONTRACT)]
    return pytester.runpytest(*paths, "--live", "--contract-dialect", dialect)


def failed_tests(result: pytest.RunResult) -> set[str]:
    return {
        match.group(1)
        for line in result.outlines
        if (match := re.match(r"FAILED \S+::(\w+)", line))
    }


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_the_suite_fails_on_a_broken_server(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch, fault: Fault
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    with serving(rewriting(mock_app(), fault.rewrite)) as url:
        result = run_live(pytester, live_env, url, "deepseek", *fault.files)
    outcomes = result.parseoutcomes()
    assert fault.caught_by in failed_tests(result), result.stdout.str()
    assert fault.says in result.stdout.str()
    assert outcomes.get("passed", 0) > 0, "the rest of the suite should still pass"


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_a_live_run_against_a_correct_server_passes_and_reports_drift(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch, dialect: str
) -> None:
    key_env = DIALECTS[dialect].key_env
    live_env.setenv(key_env, KEY)
    with MockServer(Settings(port=0, dialect=dialect, api_keys=(KEY,))) as server:
        result = run_live(pytester, live_env, server.url, dialect)
        sent = len(server.journal)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) > 20
    report = json.loads((pytester.path / "contract-drift.json").read_text())
    assert report["targets"] == [{"target": f"live-{dialect}", "base_url": server.url}]
    assert 0 < report["requests_sent"] <= 40
    assert sent <= report["requests_sent"]
    assert {case["case"] for case in report["error_cases"]} >= {"wrong key", "unknown model"}
    assert report["status_differences"] == []
    result.stdout.fnmatch_lines(["*contract drift*", "*request(s) sent of a budget of 40*"])
    assert KEY not in result.stdout.str() + result.stderr.str()


def test_a_prompt_token_difference_is_in_the_drift_report(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    with serving(
        rewriting(mock_app(), on_json(lambda c: c == 200, _prompt_tokens_off_by_one))
    ) as url:
        result = run_live(pytester, live_env, url, "deepseek", "test_chat.py")
    report = json.loads((pytester.path / "contract-drift.json").read_text())
    assert report["prompt_token_differences"] == [
        {
            "target": "live-deepseek",
            "case": "simple request",
            "model": "deepseek-flash",
            "predicted": 11,
            "reported": 12,
        }
    ]
    result.stdout.fnmatch_lines(
        ["*1 prompt_tokens difference(s)*", "*reported 12, the tokenizer and template predict 11*"]
    )


def test_a_model_the_era_does_not_serve_stops_a_live_run_before_sending(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    live_env.setenv("CONTRACT_MODEL", "deepseek-chat")
    live_env.setenv("CONTRACT_BASE_URL", "http://127.0.0.1:9")  # nothing may be sent
    result = pytester.runpytest(str(CONTRACT), "--live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*CONTRACT_MODEL='deepseek-chat' is not served by DeepSeek API in the era 'v4.1'*Nothing was sent*"
        ]
    )
    live_env.setenv("CONTRACT_ERA", "v3.2")  # the late-2025 API served it
    with MockServer(Settings(port=0, dialect="deepseek", api_keys=(KEY,), era="v3.2")) as server:
        old = run_live(pytester, live_env, server.url, "deepseek", "test_chat.py")
    assert old.ret == pytest.ExitCode.OK, old.stdout.str()


def test_live_without_the_key_stops_before_sending_anything(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    requests: list[str] = []

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        requests.append(scope.get("path", ""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    # The other dialect's key is set: it must not show up in the message either.
    live_env.setenv("AIMLAPI_API_KEY", KEY)
    with serving(counting) as url:
        live_env.setenv("CONTRACT_BASE_URL", url)
        result = pytester.runpytest(
            str(CONTRACT), "--live", "--contract-dialect", "aimlapi,deepseek"
        )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--live needs DEEPSEEK_API_KEY*Nothing was sent*"])
    assert "AIMLAPI_API_KEY" not in result.stderr.str()
    assert KEY not in result.stdout.str() + result.stderr.str()
    assert requests == []


def test_the_request_budget_stops_a_live_run(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    live_env.setenv("CONTRACT_MAX_REQUESTS", "2")
    with MockServer(Settings(port=0, dialect="deepseek", api_keys=(KEY,))) as server:
        result = run_live(
            pytester, live_env, server.url, "deepseek", "test_chat.py", "test_stream.py"
        )
        server.journal.wait_for(2)
        sent = len(server.journal)
    assert sent == 2
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) > 0
    result.stdout.fnmatch_lines(
        [
            "*request budget exhausted: 2 requests already sent (CONTRACT_MAX_REQUESTS=2)*",
            "*2 request(s) sent of a budget of 2; * refused: raise CONTRACT_MAX_REQUESTS*",
        ]
    )


def test_the_budget_of_a_run_of_every_dialect_is_per_dialect(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    """`CONTRACT_DIALECT=all ... make contract-live`, as the README shows it: one dialect sends
    about 20 requests, so three need room for about 60, not a shared 40."""
    for dialect in DIALECTS.values():
        live_env.setenv(dialect.key_env, KEY)
    live_env.setenv("CONTRACT_DIALECT", "all")
    live_env.setenv("CONTRACT_BASE_URL", "http://127.0.0.1:9")  # nothing is sent: collect only
    result = pytester.runpytest(str(CONTRACT), "--live", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*0 request(s) sent of a budget of 120 (40 per dialect)*"])


def _new_usage_field(chunks: list[Json]) -> None:
    for chunk in chunks:
        if chunk.get("usage"):
            chunk["usage"]["prompt_cache_write_tokens"] = 0


def test_a_new_field_on_the_wire_shows_up_in_the_drift_report(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    """What a team reads when the provider changes something: the run still passes (extra
    fields are allowed), and the report names the field and the schema that lacks it."""
    live_env.setenv("ACEDATA_API_TOKEN", KEY)
    with serving(rewriting(mock_app("acedata"), on_chunks(_new_usage_field))) as url:
        live_env.setenv("CONTRACT_BASE_URL", url)
        result = pytester.runpytest(
            str(CONTRACT / "test_stream.py"),
            "--live",
            "--contract-dialect",
            "acedata",
            "--drift-report",
            "drift/live.json",
        )
    result.assert_outcomes(passed=9)
    report = json.loads((pytester.path / "drift" / "live.json").read_text())
    assert [t["target"] for t in report["targets"]] == ["live-acedata"]
    undeclared = {(f["schema"], f["path"]) for f in report["undeclared_fields"]}
    assert (
        "acedata/chat-completion-chunk.schema.json",
        "$.usage.prompt_cache_write_tokens",
    ) in undeclared
    assert report["missing_required_fields"] == []
    result.stdout.fnmatch_lines(["*contract drift*", "*1 undeclared field(s)*"])


def test_a_mock_run_writes_a_clean_drift_report_when_asked(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        str(CONTRACT / "test_stream.py"),
        "--contract-dialect",
        "acedata",
        "--drift-report",
        "m.json",
    )
    result.assert_outcomes(passed=9)
    report = json.loads((pytester.path / "m.json").read_text())
    assert report["undeclared_fields"] == [] and report["bodies_checked"] > 0


def test_drift_names_undeclared_and_missing_fields_through_refs() -> None:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "deepseek-chat",
        "choices": [{"index": 0, "delta": {"content": "x", "surprise": 1}, "finish_reason": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "extra": 0},
    }
    found = examine("deepseek/chat-completion-chunk.schema.json", chunk)
    # `delta` is declared through allOf + $ref into common/, usage through anyOf + $ref + allOf.
    assert set(found.undeclared) == {"$.choices[].delta.surprise", "$.usage.extra"}
    assert set(found.missing) == {
        "$.system_fingerprint",
        "$.choices[].logprobs",
        "$.usage.prompt_cache_hit_tokens",
        "$.usage.prompt_cache_miss_tokens",
    }


def test_a_base_url_without_a_scheme_stops_the_run_at_once(
    pytester: pytest.Pytester, live_env: pytest.MonkeyPatch
) -> None:
    live_env.setenv("DEEPSEEK_API_KEY", KEY)
    live_env.setenv("CONTRACT_BASE_URL", "127.0.0.1:9")
    result = pytester.runpytest(str(CONTRACT), "--live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "CONTRACT_BASE_URL must be an http(s) URL" in result.stderr.str()
