"""Token counts and stream pieces against the live captures."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from mockserver import tokens
from mockserver.resources import data_dir

CAPTURES = data_dir("fixtures") / "captures"


def _capture(dialect: str, name: str) -> dict:  # type: ignore[type-arg]
    data: dict = json.loads((CAPTURES / dialect / f"{name}.json").read_text("utf-8"))  # type: ignore[type-arg]
    return data


def test_acedata_multi_turn_prompt_and_reply_count_as_captured() -> None:
    capture = _capture("acedata", "seed-multi-turn")
    prompt = tokens.render_prompt(capture["request"]["json"]["messages"])
    reply = capture["response"]["json"]["choices"][0]["message"]["content"]
    usage = capture["response"]["json"]["usage"]
    assert tokens.count(prompt) == usage["prompt_tokens"] == 22
    assert tokens.count(reply) == usage["completion_tokens"] == 57


def test_acedata_stream_prompt_and_pieces_as_captured() -> None:
    capture = _capture("acedata", "seed-stream-hello")
    chunks = [json.loads(e) for e in capture["response"]["sse"] if e != "[DONE]"]
    deltas = [
        c["choices"][0]["delta"]["content"] for c in chunks if not c["choices"][0]["finish_reason"]
    ]
    prompt = tokens.render_prompt(capture["request"]["json"]["messages"])
    assert tokens.count(prompt) == chunks[-1]["usage"]["prompt_tokens"] == 4
    assert tokens.pieces("".join(deltas)) == deltas
    assert "" in deltas and " 😊" in deltas  # the emoji's first token ends mid-character


def test_special_tokens_in_text_count_once() -> None:
    assert tokens.count(tokens.BOS + tokens.USER) == 2


def test_prefix_message_is_not_closed() -> None:
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Write code"},
        {"role": "assistant", "content": "```python\n", "prefix": True},
    ]
    assert tokens.render_prompt(messages).endswith(tokens.ASSISTANT + "```python\n")


@given(st.text(max_size=200))
def test_pieces_rebuild_any_text(text: str) -> None:
    parts = tokens.pieces(text)
    assert "".join(parts) == text
    assert len(parts) == tokens.count(text)


@given(st.text(min_size=1, max_size=120), st.integers(min_value=0, max_value=40))
def test_truncate_keeps_whole_characters_within_the_limit(text: str, limit: int) -> None:
    cut, used = tokens.truncate(text, limit)
    assert text.startswith(cut)
    assert used == min(limit, tokens.count(text))
    assert tokens.count(cut) <= used


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "user", "assistant", "tool", "developer"]),
                "content": st.text(max_size=40),
            }
        ),
        max_size=5,
    ),
    st.text(max_size=20),
)
def test_piecewise_prompt_ids_equal_encoding_the_whole_prompt(
    messages: list[dict[str, str]], tools_text: str
) -> None:
    whole = tokens.encode(tokens.render_prompt(messages, tools_text))
    assert tokens.prompt_ids(messages, tools_text) == whole


def test_odd_tool_calls_in_history_do_not_break_the_template() -> None:
    messages = [{"role": "assistant", "content": None, "tool_calls": [{"function": "x"}, 3]}]
    assert tokens.render_prompt(messages).count(tokens.ASSISTANT) == 2
