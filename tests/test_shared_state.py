"""Several workers and instances on one real Redis behave as one mock.

Two instances of `deepseek-mock serve --workers 2 --state redis://…` (four worker processes)
answer requests spread over both ports; every count must come out as one process would make
it: no rule over- or under-served, limits refusing exactly the excess, one ordered journal.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Protocol

import httpx
import orjson
import pytest

from mockserver.settings import Settings
from mockserver.state import open_store

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": "Bearer sk-test"}
CHAT: dict[str, object] = {
    "model": "deepseek-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "thinking": {"type": "disabled"},
}
STREAM: dict[str, object] = {**CHAT, "stream": True}


class Instance:
    """One `serve` process (with its workers), its log drained so it never stalls."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mockserver", "serve", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log: list[str] = []
        self.url = self._base_url()
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _base_url(self) -> str:
        assert self.process.stdout is not None
        for _ in range(200):  # bounded: the start-up log is a dozen lines
            line = self.process.stdout.readline()
            self.log.append(line)
            if "DeepSeek API" in line and "base_url" in line:
                return line.split("base_url ")[1].split()[0]
            if not line and self.process.poll() is not None:
                break
        self.process.kill()
        raise AssertionError("the server did not start:\n" + "".join(self.log))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the serve process)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung stop is the failure
                self.process.kill()
                self.process.wait()
                raise
        self._drain.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def instances(url: str, *args: str, count: int = 2, workers: int = 2) -> Iterator[list[Instance]]:
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            instance = Instance("--workers", str(workers), "--state", url, *args)
            stack.callback(instance.stop)
            started.append(instance)
        yield started


def admin(
    instance: Instance, method: str, path: str, body: object = None, **headers: str
) -> httpx.Response:
    content = None if body is None else orjson.dumps(body)
    kind = {"content-type": "application/json"} if body is not None else {}
    return httpx.request(
        method, instance.url + "/__mock" + path, content=content, headers={**kind, **headers}
    )


async def _post_all(
    urls: Sequence[str],
    bodies: Sequence[dict[str, object]],
    headers: Sequence[dict[str, str]],
    width: int,
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=width)
    gate = asyncio.Semaphore(width)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            async with gate:
                url = urls[i % len(urls)] + "/chat/completions"
                response = await client.post(url, json=bodies[i], headers={**AUTH, **headers[i]})
                await response.aread()
                return response

        return await asyncio.gather(*(one(i) for i in range(len(bodies))))


class Served(Protocol):
    """A server the helpers below send to: an Instance, or a MockServer in this process."""

    @property
    def url(self) -> str: ...


def post_all(
    nodes: Sequence[Served],
    count: int,
    body: dict[str, object] = CHAT,
    width: int = 16,
    headers: Sequence[dict[str, str]] | None = None,
) -> list[httpx.Response]:
    """`count` requests at once, spread over the instances in turn."""
    return asyncio.run(
        _post_all(
            [node.url for node in nodes],
            [body] * count,
            list(headers) if headers is not None else [{}] * count,
            width,
        )
    )


def _refused(*args: str) -> str:
    """`serve` with these options, which must refuse to start (exit 2): what it said."""
    command = [sys.executable, "-m", "mockserver", "serve", "--port", "0", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    return done.stderr


def test_workers_above_one_need_a_shared_store() -> None:
    said = _refused("--workers", "2")
    assert "--workers 2 (or DEEPSEEK_MOCK_WORKERS) needs a shared state" in said
    assert "--state redis://" in said


def test_an_unreachable_redis_is_refused_at_start_up() -> None:
    assert "cannot reach Redis" in _refused("--state", "redis://127.0.0.1:1/0")


def test_four_workers_count_as_one(redis_db: str) -> None:
    """times=5 answers exactly 5 of 200 parallel requests; the journal holds all 200, in
    order, and wait_for(200) returns from a process that served none of them."""
    with instances(redis_db) as nodes:
        scenario = {"rules": [{"name": "five", "times": 5, "error": {"status": 503}}]}
        assert admin(nodes[0], "PUT", "/scenario", scenario).status_code == 200
        replies = post_all(nodes, 200)
        statuses = [reply.status_code for reply in replies]
        assert statuses.count(503) == 5 and statuses.count(200) == 195
        uses = admin(nodes[1], "GET", "/scenario").json()["uses"]
        assert uses == {"five": 5}
        observer = open_store(Settings(state=redis_db), ())
        try:
            entries = observer.space().journal.wait_for(200, timeout=10)
        finally:
            observer.close()
        assert [entry.seq for entry in entries] == list(range(1, 201))
        assert sum(entry.status == 503 for entry in entries) == 5
        # Every worker of both instances answered some: the work was really shared.
        pids = {admin(node, "GET", "/health").json()["pid"] for node in nodes for _ in range(8)}
        assert len(pids) >= 2


def test_a_sequence_answers_in_order_across_instances(redis_db: str) -> None:
    with instances(redis_db) as nodes:
        rules = [
            {"name": f"step {i}", "times": 1, "reply": {"content": f"step {i}"}} for i in range(6)
        ]
        admin(nodes[1], "PUT", "/scenario", {"rules": rules})
        said = []
        for i in range(7):
            node = nodes[i % 2]
            reply = httpx.post(node.url + "/chat/completions", json=CHAT, headers=AUTH)
            said.append(reply.json()["choices"][0]["message"]["content"])
        assert said[:6] == [f"step {i}" for i in range(6)]
        assert not said[6].startswith("step")


def test_the_rate_limit_refuses_exactly_the_excess(redis_db: str) -> None:
    with instances(redis_db, "--rate-limit", "50/60") as nodes:
        statuses = [reply.status_code for reply in post_all(nodes, 80)]
    assert statuses.count(200) == 50 and statuses.count(429) == 30


def test_the_concurrency_limit_refuses_exactly_the_excess(redis_db: str) -> None:
    """Ten streams that take two seconds each, three allowed in flight at once."""
    with instances(redis_db, "--max-concurrent", "3") as nodes:
        slow = {"rules": [{"name": "slow", "delivery": {"first_byte": 2.0}}]}
        admin(nodes[0], "PUT", "/scenario", slow)
        statuses = [reply.status_code for reply in post_all(nodes, 10, STREAM)]
        assert statuses.count(200) == 3 and statuses.count(429) == 7
        # All ten are over: the slots are free again.
        admin(nodes[0], "DELETE", "/scenario")
        assert [r.status_code for r in post_all(nodes, 3, STREAM)] == [200, 200, 200]


def test_a_killed_worker_frees_its_slot(redis_db: str) -> None:
    """A worker killed mid-stream never releases its slot; its lease, no longer renewed,
    runs out, and the other instance admits a request again."""
    with instances(redis_db, "--max-concurrent", "1", "--lease-seconds", "1", workers=1) as nodes:
        holder, other = nodes
        slow = {"rules": [{"name": "slow", "delivery": {"gap": 0.5}}]}
        admin(holder, "PUT", "/scenario", slow)
        with httpx.stream(
            "POST", holder.url + "/chat/completions", json=STREAM, headers=AUTH, timeout=30
        ) as stream:
            assert stream.status_code == 200
            chunks = stream.iter_raw()  # kept: a dropped iterator closes the response
            next(chunks)  # the stream is open and its slot is held
            refused = httpx.post(other.url + "/chat/completions", json=CHAT, headers=AUTH)
            assert refused.status_code == 429
            holder.process.kill()  # SIGKILL: no release, no goodbye
            holder.process.wait(timeout=10)
        admin(other, "DELETE", "/scenario")
        deadline = time.monotonic() + 10
        statuses = []
        for _ in range(5000):  # bounded in count and time; the lease lasts 1 s
            status = httpx.post(
                other.url + "/chat/completions", json=CHAT, headers=AUTH
            ).status_code
            statuses.append(status)
            if status == 200 or time.monotonic() > deadline:
                break
        assert statuses[-1] == 200, statuses[-5:]
        assert statuses[0] == 429  # it was still held right after the kill


def test_namespaces_in_parallel_never_see_each_other(redis_db: str) -> None:
    with instances(redis_db) as nodes:
        admin(
            nodes[0],
            "PUT",
            "/scenario",
            {"rules": [{"name": "down", "error": {"status": 503}}]},
            **{"x-mock-namespace": "team-a"},
        )
        admin(
            nodes[1],
            "PUT",
            "/scenario",
            {"rules": [{"name": "b", "reply": {"content": "for b"}}]},
            **{"x-mock-namespace": "team-b"},
        )
        names = ["team-a", "team-b"] * 50
        replies = post_all(nodes, 100, headers=[{"x-mock-namespace": name} for name in names])
        for name, reply in zip(names, replies, strict=True):
            if name == "team-a":
                assert reply.status_code == 503
            else:
                assert reply.json()["choices"][0]["message"]["content"] == "for b"
        for name, status in (("team-a", 503), ("team-b", 200)):
            entries = admin(nodes[1], "GET", "/journal", **{"x-mock-namespace": name}).json()[
                "entries"
            ]
            assert len(entries) == 50 and {e["status"] for e in entries} == {status}
        assert admin(nodes[0], "GET", "/journal").json()["entries"] == []
        assert "down" not in admin(nodes[0], "GET", "/scenario").json()["rules"]


def test_a_bad_namespace_gets_a_clear_400(redis_db: str) -> None:
    with instances(redis_db, count=1, workers=1) as (node,):
        reply = httpx.post(
            node.url + "/chat/completions", json=CHAT, headers={**AUTH, "x-mock-namespace": "a b"}
        )
        assert reply.status_code == 400
        assert "not a namespace name" in reply.json()["error"]["message"]


def test_while_redis_is_away_requests_get_a_503_that_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that cannot be reached is not a bug of the mock's: every request, the admin
    API's too, gets a 503 in its dialect's envelope naming the store, on a connection that
    stays open, with a line in the log rather than a traceback."""
    from mockserver.server import MockServer
    from tests.redis_server import redis_server

    redis_alive = ExitStack()
    url = redis_alive.enter_context(redis_server()) + "/0"
    try:
        with MockServer(state=url) as server, httpx.Client(base_url=server.url) as client:
            assert client.post("/chat/completions", json=CHAT, headers=AUTH).status_code == 200
            redis_alive.close()  # redis-server stops; the mock goes on
            for _ in range(2):  # the second on the same connection: it was not closed
                away = client.post("/chat/completions", json=CHAT, headers=AUTH)
                assert away.status_code == 503, away.text
                assert "connection" not in away.headers
                assert (
                    f"the shared state (redis at {url}) is unreachable"
                    in away.json()["error"]["message"]
                )
            health = client.get("/__mock/health")
            assert health.status_code == 503 and "unreachable" in health.text
            journal = client.get("/__mock/journal")
            assert journal.status_code == 503 and "unreachable" in journal.text
    finally:
        redis_alive.close()
    said = [record.getMessage() for record in caplog.records]
    assert not any("Exception in ASGI application" in line for line in said), said


def test_a_redis_started_again_costs_no_request() -> None:
    """Redis restarts under a busy mock: the connections the mock had pooled are closed on the
    other side, and a command that finds its connection closed is sent again on a new one,
    so no request gets a 503 for it."""
    from mockserver.server import MockServer
    from tests.redis_server import redis_server

    redis_alive = ExitStack()
    url = redis_alive.enter_context(redis_server())
    port = int(url.rsplit(":", 1)[1])
    try:
        with MockServer(state=url + "/0") as server:
            before = _statuses([server], 40)
            redis_alive.close()
            redis_alive.enter_context(redis_server(port))  # empty, on the same port
            after = _statuses([server], 40)
    finally:
        redis_alive.close()
    assert (before, after) == ({200: 40}, {200: 40})


def test_more_requests_at_once_than_the_pool_has_connections_all_get_their_answer(
    redis_db: str,
) -> None:
    """Past the per-worker pool (redis_store.POOL_CONNECTIONS), a request waits for a
    connection: none is refused with a 503 while Redis is there, and none is missing from
    the journal."""
    from mockserver.server import MockServer
    from mockserver.state import redis_store

    count = redis_store.POOL_CONNECTIONS * 5 // 2
    with MockServer(state=redis_db) as server:
        assert _statuses([server], count, width=count) == {200: count}
        assert len(server.journal.wait_for(count, timeout=30)) == count


def _statuses(nodes: Sequence[Served], count: int, width: int = 8) -> dict[int, int]:
    """How many of `count` chat requests at once (`width` in flight) got each status."""
    statuses: dict[int, int] = {}
    for response in post_all(nodes, count, width=width):
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def test_a_stream_whose_store_goes_away_still_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The journal's entry is written when the answer ends; with Redis gone by then, the
    client still gets its last bytes, and the log says so in one line, not a traceback."""
    from mockserver.server import MockServer
    from tests.redis_server import redis_server

    redis_alive = ExitStack()
    url = redis_alive.enter_context(redis_server()) + "/0"
    try:
        with MockServer(state=url) as server:
            paced = AUTH | {"X-Mock-Delivery": "gap=0.01"}
            body = CHAT | {"stream": True, "max_tokens": 40}
            with httpx.stream(
                "POST", server.url + "/chat/completions", json=body, headers=paced, timeout=10
            ) as answer:
                lines = answer.iter_lines()
                assert next(line for line in lines if line.startswith("data: "))
                redis_alive.close()  # while the stream is in flight
                rest = list(lines)  # raises if the stream does not end cleanly
            assert answer.status_code == 200 and "data: [DONE]" in rest
    finally:
        redis_alive.close()
    said = [record.getMessage() for record in caplog.records]
    assert any("not recorded: the shared state is unreachable" in line for line in said), said
    assert not any("Exception in ASGI application" in line for line in said), said
