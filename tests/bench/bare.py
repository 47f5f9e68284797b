"""The baseline: a bare Starlette app that replays the mock's own bytes.

It does what a typical hand-written endpoint does and nothing more: parse the JSON body and
pick a fixed answer. A stream is sent the way the mock sends one when nothing paces it: its
frames joined into writes by `mockserver.delivery.batched`, yielding to the loop between
writes, so a streaming ratio compares the servers and not two ways of writing. The same
stream one frame per send (as a typical hand-written endpoint does it) is served at
`UNBATCHED + /chat/completions`. Whatever the mock costs beyond this is the price of
validation, token counting, rules, rendering, the journal and pacing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

# File names of the captured answers inside the directory the launcher is given.
JSON_SHORT = "json-short.bin"
STREAM_SHORT = "stream-short.bin"
STREAM_LONG = "stream-long.bin"
UNBATCHED = "/unbatched"  # path prefix of the frame-per-send stream


def split_frames(stream: bytes) -> list[bytes]:
    """An SSE body back into its events, each with its own blank-line terminator."""
    return [frame + b"\n\n" for frame in stream.split(b"\n\n") if frame]


def create_app(captured: Path) -> Starlette:
    from mockserver.delivery import batched

    answer = (captured / JSON_SHORT).read_bytes()
    short_frames = split_frames((captured / STREAM_SHORT).read_bytes())
    long_frames = split_frames((captured / STREAM_LONG).read_bytes())
    short_batches = list(batched(short_frames))
    long_batches = list(batched(long_frames))

    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return Response(answer, media_type="application/json")
        long = body.get("max_tokens", 0) > 1000
        if request.url.path.startswith(UNBATCHED):
            writes, pause = (long_frames if long else short_frames), False
        else:
            writes, pause = (long_batches if long else short_batches), True

        async def events() -> AsyncIterator[bytes]:
            for i, write in enumerate(writes):
                if pause and i:
                    await anyio.sleep(0)  # as the mock: other streams get in between writes
                yield write

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    async def home(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/chat/completions", chat, methods=["POST"]),
            Route(UNBATCHED + "/chat/completions", chat, methods=["POST"]),
        ]
    )
