"""What every figure sends: the prompt, the canned replies and the request bodies.

Both servers are asked exactly the same bytes, so any difference in a figure is the server's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from tests.bench.load import Distinct

PROMPT_TOKENS = 200
SHORT_REPLY_TOKENS = 100
LONG_REPLY_TOKENS = 10_000
PACING_GAP = 0.02  # seconds between events in the pacing figure

# Today's model with thinking off: a canned reply is then the whole answer (no generated
# reasoning), and max_tokens goes up to 393216, so the long reply's 10,000 fit.
SHORT_MODEL = "deepseek-flash"
LONG_MODEL = "deepseek-flash"

SHORT_TAG = "bench short reply."
LONG_TAG = "bench long reply."

_SENTENCE = (
    "The mock server answers every request with a reply that follows the live API closely, "
    "including usage figures, identifiers and the order of fields in each chunk. "
)


@dataclass(frozen=True, slots=True)
class Texts:
    """Prompt and replies cut to exact token counts with DeepSeek's own tokenizer."""

    prompt: str
    short_reply: str
    long_reply: str


def build_texts() -> Texts:
    # Imported here: the launcher of the bare app must not pay for the tokenizer.
    from mockserver import tokens

    prompt, _ = tokens.truncate(SHORT_TAG + " " + _SENTENCE * 12, PROMPT_TOKENS - 4)
    short, short_n = tokens.truncate(_SENTENCE * 6, SHORT_REPLY_TOKENS)
    long, long_n = tokens.truncate(_SENTENCE * 400, LONG_REPLY_TOKENS)
    if (short_n, long_n) != (SHORT_REPLY_TOKENS, LONG_REPLY_TOKENS):
        raise RuntimeError(f"canned replies have {short_n} and {long_n} tokens")
    return Texts(prompt=prompt, short_reply=short, long_reply=long)


def short_body(texts: Texts, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": SHORT_MODEL,
        "messages": [{"role": "user", "content": texts.prompt}],
        "max_tokens": SHORT_REPLY_TOKENS,
        "thinking": {"type": "disabled"},
        "stream": stream,
    }
    return orjson.dumps(body)


def generated_body(texts: Texts) -> bytes:
    """The short non-streaming request without the tag the canned rule matches: the mock
    generates its reply (a few sentences, seeded by the request)."""
    body: dict[str, Any] = {
        "model": SHORT_MODEL,
        "messages": [{"role": "user", "content": texts.prompt.removeprefix(SHORT_TAG + " ")}],
        "max_tokens": SHORT_REPLY_TOKENS,
        "thinking": {"type": "disabled"},
        "stream": False,
    }
    return orjson.dumps(body)


_COUNTER = "@N@"  # where a distinct body's counter goes; never part of the prompt's text


def distinct_body(texts: Texts, start: int) -> Distinct:
    """The short non-streaming request with " #<n>" after the prompt: every request a new
    prompt (counted afresh), still matched by the canned rule (which anchors on the start)."""
    body: dict[str, Any] = {
        "model": SHORT_MODEL,
        "messages": [{"role": "user", "content": f"{texts.prompt} #{_COUNTER}"}],
        "max_tokens": SHORT_REPLY_TOKENS,
        "thinking": {"type": "disabled"},
        "stream": False,
    }
    prefix, suffix = orjson.dumps(body).split(_COUNTER.encode())
    return Distinct(prefix, suffix, start)


def long_body(texts: Texts) -> bytes:
    body: dict[str, Any] = {
        "model": LONG_MODEL,
        "messages": [{"role": "user", "content": LONG_TAG + " " + texts.prompt}],
        "max_tokens": LONG_REPLY_TOKENS,
        "thinking": {"type": "disabled"},
        "stream": True,
    }
    return orjson.dumps(body)


def rule_spec(texts: Texts) -> list[dict[str, str]]:
    """The canned replies the mock's launcher installs, as plain data (it reads them as JSON)."""
    return [
        {"name": "bench long", "prompt": "^" + re.escape(LONG_TAG), "content": texts.long_reply},
        {"name": "bench short", "prompt": "^" + re.escape(SHORT_TAG), "content": texts.short_reply},
    ]


def scenario_file(texts: Texts) -> dict[str, Any]:
    """The same canned replies as a scenario file for `deepseek-mock serve --fixtures`."""
    return {
        "rules": [
            {
                "name": r["name"],
                "match": {"prompt": r["prompt"]},
                "reply": {"content": r["content"]},
            }
            for r in rule_spec(texts)
        ]
    }
