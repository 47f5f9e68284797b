"""The baseline: a bare Starlette app that replays the mock's own bytes.

It does what a typical hand-written endpoint does and nothing more: parse the JSON body, pick
a fixed answer, and for a stream yield one SSE frame per event. Whatever the mock costs beyond
this is the price of validation, token counting, rules, rendering, the journal and pacing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

# File names of the captured answers inside the directory the launcher is given.
JSON_SHORT = "json-short.bin"
STREAM_SHORT = "stream-short.bin"
STREAM_LONG = "stream-long.bin"


def split_frames(stream: bytes) -> list[bytes]:
    """An SSE body back into its events, each with its own blank-line terminator."""
    return [frame + b"\n\n" for frame in stream.split(b"\n\n") if frame]


def create_app(captured: Path) -> Starlette:
    answer = (captured / JSON_SHORT).read_bytes()
    short_frames = split_frames((captured / STREAM_SHORT).read_bytes())
    long_frames = split_frames((captured / STREAM_LONG).read_bytes())

    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return Response(answer, media_type="application/json")
        frames = long_frames if body.get("max_tokens", 0) > 1000 else short_frames

        async def events() -> AsyncIterator[bytes]:
            for frame in frames:
                yield frame

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    async def home(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/chat/completions", chat, methods=["POST"]),
        ]
    )
