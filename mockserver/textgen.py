"""Seeded text for requests that no canned reply answers.

The same seed and the same request always give the same words, whatever else the server has
seen, so a test that fails once fails again. Nothing here reads the clock or global state.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson

OPENERS = (
    "Sure!",
    "Happy to help.",
    "Good question.",
    "Here is a short answer.",
    "Of course.",
    "Let me explain.",
)
SENTENCES = (
    "This reply comes from deepseek-mock, a local stand-in for the DeepSeek API.",
    "The same seed and the same request always give these same words.",
    "Its token usage is counted with DeepSeek's own tokenizer.",
    "No network call was made to write it.",
    "Streamed, it arrives one token at a time and ends with data: [DONE].",
    "A different prompt gets a different reply.",
    "A rule in a scenario file can replace this text with a canned answer.",
    "Faults such as a 503 or a cut stream can be asked for on demand.",
    "Every exchange is kept in the journal, with keys redacted.",
    "It is short on purpose, so tests stay fast.",
)
CLOSERS = ("Let me know if you need more.", "Hope this helps! 😊", "Anything else?", "")
THOUGHTS = (
    "The user asks something; I should answer briefly.",
    "First, restate the question.",
    "Then check what a good, short answer looks like.",
    "No tool or outside fact is needed here.",
    "I will keep the answer friendly and clear.",
)


# Fields that shape how much of the answer is sent, or how, not what it says: a streamed or
# truncated request gets the same words as the plain one, cut where it asks.
NOT_CONTENT = frozenset(
    {
        "stream",
        "stream_options",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "logprobs",
        "top_logprobs",
    }
)


def rng_for(seed: int, request: Any, index: int = 0) -> random.Random:
    """A generator keyed by the seed and the request's canonical JSON."""
    if isinstance(request, dict):
        request = {k: v for k, v in request.items() if k not in NOT_CONTENT}
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    digest = hashlib.sha256(b"%d:%d:" % (seed, index) + canonical).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def reply_text(rng: random.Random, topic: str = "") -> str:
    words = topic.split(maxsplit=6)[
        :6
    ]  # only the first six are used: a long prompt is not split whole
    lead = rng.choice(OPENERS)
    if words:
        lead += f" You asked about “{' '.join(words[:6])}”."
    body = " ".join(rng.sample(SENTENCES, rng.randint(2, 4)))
    return " ".join(part for part in (lead, body, rng.choice(CLOSERS)) if part)


CODE_LINES = (
    "def answer() -> int:",
    "    # written by deepseek-mock",
    "    return 42",
    "",
    "print(answer())",
)


def continuation(rng: random.Random, prefix: str, topic: str = "") -> str:
    """The rest of a reply whose start the request gave (Chat Prefix Completion): the prefix
    itself is not repeated. An open code fence gets code and its closing fence, which is what
    the documented example's `stop=["```"]` then cuts at."""
    if prefix.count("```") % 2 == 1:
        start = 0 if prefix.endswith("\n") else 1
        return "\n" * start + "\n".join(CODE_LINES) + "\n```"
    text = reply_text(rng, topic)
    return text if not prefix or prefix[-1].isspace() else " " + text


CODE_START = ("def ", "class ", "function ", "fn ", "func ", "public ", "import ", "#include")


def fill(rng: random.Random, prompt: str) -> str:
    """The middle of a FIM request: code where the prompt is code (it opens a block or starts
    like a definition), words otherwise."""
    last = prompt.rstrip().splitlines()[-1] if prompt.strip() else ""
    if last.rstrip().endswith((":", "{", "(")) or last.lstrip().startswith(CODE_START):
        indent = "    " if last.rstrip().endswith((":", "{")) else ""
        lines = ("# filled in by deepseek-mock", "result = 42", "return result")
        return "\n" + "\n".join(indent + line for line in lines) + "\n"
    return continuation(rng, prompt)


def reasoning_text(rng: random.Random) -> str:
    count = rng.randint(2, len(THOUGHTS))
    return " ".join(THOUGHTS[:count])


def json_text(rng: random.Random, topic: str = "") -> str:
    value = {
        "answer": reply_text(rng, topic),
        "confidence": round(rng.uniform(0.5, 1.0), 2),
        "tags": rng.sample(["mock", "deepseek", "json", "test", "ci"], 2),
    }
    return orjson.dumps(value).decode()
