"""The cost per request of the mock's expensive steps, in-process with `timeit` (µs).

Each step is timed alone on inputs the load figures use, so a slow figure can be traced to
the step that pays for it.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass

from tests.bench.workload import SHORT_MODEL, Texts, short_body


@dataclass(frozen=True, slots=True)
class Cost:
    name: str
    median_us: float
    min_us: float
    max_us: float


def measure(name: str, step: Callable[[], object], repeats: int) -> Cost:
    timer = timeit.Timer(step)
    number, _ = timer.autorange()  # enough calls for ~0.2 s a repeat
    per_call = [total / number * 1e6 for total in timer.repeat(repeat=repeats, number=number)]
    return Cost(name, statistics.median(per_call), min(per_call), max(per_call))


def costs(texts: Texts, repeats: int) -> list[Cost]:
    from mockserver import tokens
    from mockserver.dialects import DEEPSEEK
    from mockserver.journal import Entry, Journal
    from mockserver.responder import Responder
    from mockserver.scenario import Reply
    from mockserver.schemas import validator
    from mockserver.streaming import sse
    from mockserver.validation import parse_body, parse_chat

    body = short_body(texts, stream=False)
    chat = parse_chat(parse_body(body), DEEPSEEK.limits, DEEPSEEK.catalog.newest)
    reply = Reply(content=texts.short_reply)
    responder = Responder()
    completion = responder.complete(chat, reply, completion_id="bench", model=SHORT_MODEL)
    rendered = DEEPSEEK.render(completion)
    journal = Journal(1000)
    check = validator(DEEPSEEK.schema("chat-completion"))
    prompt_text = tokens.render_prompt(chat.messages)

    def journal_step() -> None:
        journal.record(Entry(method="POST", path="/chat/completions"))

    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "request validation (parse_body + parse_chat, incl. prompt tokens)",
            lambda: parse_chat(parse_body(body), DEEPSEEK.limits, DEEPSEEK.catalog.newest),
        ),
        (
            "token counting, repeated text (encode, ~200-token prompt)",
            lambda: tokens.encode(prompt_text),
        ),
        (
            "token counting, new text (uncached encode, ~200-token prompt)",
            lambda: tokens._tokenizer().encode_batch_fast([prompt_text], add_special_tokens=False),
        ),
        (
            "completion (Responder.complete, 100-token reply)",
            lambda: responder.complete(chat, reply, completion_id="bench", model=SHORT_MODEL),
        ),
        (
            "rendering + JSON (render + dumps)",
            lambda: DEEPSEEK.dumps(DEEPSEEK.render(completion)),
        ),
        (
            "stream rendering (chunks + SSE frames, 100 tokens)",
            lambda: list(sse(DEEPSEEK.chunks(completion, False), DEEPSEEK.dumps)),
        ),
        ("journal (Journal.record of an Entry)", journal_step),
        ("jsonschema validation of the response", lambda: check.validate(rendered)),
    ]
    return [measure(name, step, repeats) for name, step in steps]
