"""Conversations with the real DeepSeek API, recorded by `make record-live` into
`live/cassettes/` and replayed offline by `pytest live` (never run by CI)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.deepseek_mock(cassette="greeting")
def test_greeting(deepseek_client: Any) -> None:
    reply = deepseek_client.chat.completions.create(
        model="deepseek-flash",
        messages=[{"role": "user", "content": "Say hello"}],
        extra_body={"thinking": {"type": "disabled"}},
        max_tokens=16,
    )
    assert reply.choices[0].message.content

    stream = deepseek_client.chat.completions.create(
        model="deepseek-flash",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"thinking": {"type": "disabled"}},
        max_tokens=16,
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None
