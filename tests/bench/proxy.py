"""The validating proxy's cost per frame: an upstream that stamps each chunk with the moment it
sends it (CLOCK_MONOTONIC, shared by every process of the machine), read directly and through
`deepseek-mock proxy`; the difference is what the proxy adds."""

from __future__ import annotations

import asyncio
import time

import anyio
import httpx
import orjson
from starlette.types import Receive, Scope, Send

FRAMES = 200
GAP = 0.005  # seconds between the upstream's chunks
STREAMS = 10  # at once, per round


def chunk(stamp: int, *, last: bool) -> bytes:
    body = {
        "id": "bench",
        "object": "chat.completion.chunk",
        "created": 1796000000,
        "model": "deepseek-flash",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "delta": {"content": str(stamp)},
                "logprobs": None,
                "finish_reason": "stop" if last else None,
            }
        ],
    }
    if last:
        body["usage"] = {"prompt_tokens": 1, "completion_tokens": FRAMES, "total_tokens": 201}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def stamps_app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: 200 (the readiness probe). POST: a stream of FRAMES stamped chunks, GAP apart."""
    if scope["type"] != "http":
        return
    await receive()
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    deadline = anyio.current_time()
    for n in range(FRAMES):
        deadline += GAP
        await anyio.sleep(max(deadline - anyio.current_time(), 0))
        frame = chunk(time.monotonic_ns(), last=n == FRAMES - 1)
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _one(client: httpx.AsyncClient, url: str, out: list[float]) -> None:
    body = {"model": "deepseek-flash", "messages": [{"role": "user", "content": "x"}]}
    async with client.stream("POST", url, json=body | {"stream": True}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                now = time.monotonic_ns()
                sent = int(orjson.loads(line[6:])["choices"][0]["delta"]["content"])
                out.append((now - sent) / 1e6)


async def latencies(url: str) -> list[float]:
    """Milliseconds from the upstream's send to this process's read, for every frame."""
    out: list[float] = []
    headers = {"authorization": "Bearer sk-bench"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        await asyncio.gather(*(_one(client, url, out) for _ in range(STREAMS)))
    return out
