"""A stream's runs of alike chunks are framed from one encoding of their chunk: the frames must
be the bytes that encoding every chunk on its own gives, on every dialect, whatever the text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from mockserver.anthropic.dialect import ANTHROPIC
from mockserver.dialects import DIALECTS, Dialect
from mockserver.responder import CallOut, Choice, Completion
from mockserver.streaming import STAND_IN, Part, Run, expand, framed_run, sse
from mockserver.usage import Usage

Json = dict[str, Any]

# Text that JSON has to escape, text outside the BMP, and the stand-in itself.
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(['"', "\\", "\n", "\x00", "\u2028", "😊", "船", STAND_IN, STAND_IN * 2]),
)


@st.composite
def choices(draw: st.DrawFn, index: int) -> Choice:
    content = draw(st.none() | TEXT)
    calls = draw(
        st.lists(
            st.builds(CallOut, id=st.just(f"call_0{index}"), name=st.just("f"), arguments=TEXT),
            max_size=2,
        )
    )
    logprobs = None
    if content and draw(st.booleans()):
        logprobs = [{"token": content, "logprob": -0.5, "bytes": None, "top_logprobs": []}]
    return Choice(
        index=index,
        content=content,
        reasoning=draw(st.none() | TEXT),
        tool_calls=tuple(calls),
        finish_reason="tool_calls" if calls else "stop",
        logprobs=logprobs,
    )


@st.composite
def completions(draw: st.DrawFn) -> Completion:
    count = draw(st.integers(min_value=1, max_value=2))
    return Completion(
        id="chatcmpl-" + draw(TEXT),
        created=1_767_225_600,
        model="deepseek-chat",
        choices=tuple(draw(choices(i)) for i in range(count)),
        usage=Usage(prompt_tokens=12, completion_tokens=7, cache_hit_tokens=4),
        fingerprint="fp_test",
    )


def one_by_one(dialect: Dialect, parts: list[Part]) -> bytes:
    """The frames as encoding each chunk on its own gives them (no run reaches the framing)."""
    return b"".join(dialect.frame(list(expand(parts)), dialect.dumps))


SURFACES: list[tuple[str, Dialect, Callable[[Completion, bool], Any]]] = [
    (name, dialect, dialect.chunks) for name, dialect in DIALECTS.items()
]
SURFACES.append(("anthropic", ANTHROPIC, ANTHROPIC.chunks))
fim = DIALECTS["deepseek"].fim_chunks
assert fim is not None
SURFACES.append(("deepseek fim", DIALECTS["deepseek"], fim))


@pytest.mark.parametrize(
    ("dialect", "chunks"), [s[1:] for s in SURFACES], ids=[s[0] for s in SURFACES]
)
@settings(max_examples=60, deadline=None)
@given(completion=completions(), include_usage=st.booleans())
def test_runs_frame_as_their_chunks_one_by_one(
    dialect: Dialect,
    chunks: Callable[[Completion, bool], Any],
    completion: Completion,
    include_usage: bool,
) -> None:
    parts = list(chunks(completion, include_usage))
    assert b"".join(dialect.frame(parts, dialect.dumps)) == one_by_one(dialect, parts)


def test_the_text_of_a_stream_comes_as_runs() -> None:
    """What makes a long stream cheap: its pieces are runs, not a chunk each (but for content
    with logprobs, whose deltas each carry their own), on every surface."""
    text = "The sea is wide and the ships are many. " * 20
    plain = Completion(
        id="chatcmpl-x",
        created=1,
        model="deepseek-chat",
        choices=(Choice(index=0, content=text, reasoning=text),),
        usage=Usage(prompt_tokens=1, completion_tokens=1),
    )
    for name, _, chunks in SURFACES:
        runs = [part for part in chunks(plain, False) if isinstance(part, Run)]
        assert runs and max(len(run.values) for run in runs) > 100, name


@pytest.mark.parametrize(
    ("dumps", "wrap"),
    [(orjson.dumps, ("data: ", "\n\n")), (lambda v: json.dumps(v).encode(), ("", "\n"))],
    ids=["compact", "spaced"],
)
def test_a_chunk_the_stand_in_is_not_alone_in_is_encoded_whole(
    dumps: Callable[[Any], bytes], wrap: tuple[str, str]
) -> None:
    """A run whose chunk holds its value twice, or not at all, cannot be one encoding with a
    hole in it: each chunk is then encoded on its own."""
    before, after = wrap[0].encode(), wrap[1].encode()
    values = ["a", '"b"', ""]
    for chunk in (
        lambda v: {"text": v, "again": v},
        lambda v: {"fixed": True},
        lambda v: {"text": v[::-1]},
    ):
        run = Run(chunk, values)
        expected = [before + dumps(chunk(v)) + after for v in values]
        assert list(framed_run(run, dumps, before, after)) == expected


def test_an_empty_run_frames_nothing() -> None:
    assert list(sse([Run(lambda v: {"text": v}, [])], orjson.dumps)) == [b"data: [DONE]\n\n"]
