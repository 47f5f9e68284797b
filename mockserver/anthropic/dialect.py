"""The Anthropic surface as the pipeline sees it: a `Dialect` of its own, beside DeepSeek's.

It is served wherever DeepSeek's dialect is (the same server, the same catalogue and eras, the
same key rules), under `/anthropic`: the `anthropic` SDK's `base_url` is `<server>/anthropic`
and it appends `/v1/messages`; DeepSeek's Messages reference also names `/anthropic/messages`.
"""

from __future__ import annotations

from collections.abc import Mapping

from mockserver import ids
from mockserver.anthropic.events import error_event, events, sse
from mockserver.anthropic.message import IN_STREAM_ERROR, error_json, message_id, render
from mockserver.anthropic.request import parse_messages
from mockserver.dialects.base import Dialect, ErrorBody, compact
from mockserver.errors import ApiError
from mockserver.responder import Completion
from mockserver.validation import Limits


def _error(error: ApiError, path: str) -> ErrorBody:
    """Always JSON: a `plain` fault still answers in the envelope the SDK parses."""
    return ErrorBody(error.status, compact(error_json(error)))


def _headers(
    completion: Completion | None, stream: bool, request: Mapping[str, str]
) -> dict[str, str]:
    # The same backend as DeepSeek's chat completions, so the same trace header.
    return {"x-ds-trace-id": ids.hex_token(16)}


ANTHROPIC = Dialect(
    name="anthropic",
    title="DeepSeek Anthropic API",
    catalog_name="deepseek",
    schema_names={"chat-completion": "message", "chat-completion-chunk": "stream-event"},
    limits=Limits(max_stop=16, max_n=1),
    chat_paths=("/anthropic/v1/messages", "/anthropic/messages"),
    parse=parse_messages,
    sdk_path="/anthropic",
    home="/anthropic/",
    key_env="DEEPSEEK_API_KEY",
    live_base_url="https://api.deepseek.com",
    dumps=compact,
    new_id=message_id,
    render=render,
    chunks=events,
    frame=sse,
    stream_error=error_event,
    in_band_error=IN_STREAM_ERROR,
    error=_error,
    headers=_headers,
    invalid_key_message=lambda key: (
        f"Authentication Fails, Your api key: ****{key[-4:]} is invalid"
    ),
)
