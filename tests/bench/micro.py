"""The cost per request of the mock's expensive steps, in-process with `timeit` (µs).

Each step is timed alone on inputs the load figures use, so a slow figure can be traced to
the step that pays for it.
"""

from __future__ import annotations

import itertools
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
    from mockserver import bpe, templates, tokens
    from mockserver.delivery import batched
    from mockserver.dialects import DEEPSEEK
    from mockserver.journal import Entry, Journal
    from mockserver.responder import Completion, Responder
    from mockserver.scenario import Reply
    from mockserver.schemas import validator
    from mockserver.streaming import sse
    from mockserver.templates import Templates
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

    # A repeated stream's answer: its template, as the server keeps it, copied with an id.
    kept = Templates()
    owner = object()

    def stream_writes(made: Completion) -> list[bytes]:
        return list(batched(sse(DEEPSEEK.chunks(made, False), DEEPSEEK.dumps)))

    template = kept.build(
        templates.key(owner), (owner,), completion, stream_writes(completion), stream_writes
    )
    if template is None:
        raise RuntimeError("the bench's stream could not be kept as a template")
    counter = itertools.count()

    def changed_prompt() -> tuple[int, ...]:
        # The prompt with a new word at its end: only its last piece is encoded afresh.
        return tokens.encode(f"{prompt_text} #{next(counter)}")

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
            lambda: bpe.encoder().encode(prompt_text),
        ),
        (
            "token counting, a long text with a new end (its pieces cached but the last)",
            changed_prompt,
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
        (
            "a repeated stream copied from its template (100 tokens, all writes)",
            lambda: list(template.render("0b7e4f0c-3f5d-4a7e-9a55-8b8f1c2d3e4f", 1796000000)),
        ),
        ("journal (Journal.record of an Entry)", journal_step),
        ("jsonschema validation of the response", lambda: check.validate(rendered)),
    ]
    return [measure(name, step, repeats) for name, step in steps]
