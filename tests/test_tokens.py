"""Token counts and stream pieces against the live captures."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from mockserver import bpe, tokens
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


# Text where the tokenizer's rules meet: words, runs of spaces, digits, CJK, accents,
# punctuation glued to words, newlines, emoji and special tokens.
_STRETCHES = st.sampled_from(
    [
        "a",
        "Sea",
        " ",
        "  ",
        "\n",
        "\n\n ",
        "12",
        "2026",
        "船は海",
        "é",
        "ü",
        "'s",
        "-x",
        "!?",
        "...",
        "🙂",
        "\t",
        tokens.USER,
        tokens.THINK,
        "<dsml:",
        " the ",
    ]
)


@given(st.lists(_STRETCHES, max_size=400).map("".join), st.integers(min_value=1, max_value=40))
def test_a_long_text_encoded_in_pieces_is_the_text_encoded_whole(text: str, size: int) -> None:
    whole = tokens._encode_fresh(text) if text else ()
    tokens.clear_cache()
    original = tokens.PIECE_CHARS
    tokens.PIECE_CHARS = size  # small pieces: many cuts in every example
    try:
        for _ in range(3):  # fresh, then kept (its second sighting), then from the cache
            assert tokens.encode(text) == whole
        pieces = tokens.pieces_of(text)
        assert "".join(pieces) == text
        if len(text) > size:
            # and each cut falls where the comment says: a space between ASCII letters
            assert all(p[-1:].isascii() and p[-1:].isalpha() for p in pieces[:-1])
    finally:
        tokens.PIECE_CHARS = original
        tokens.clear_cache()


def test_a_text_that_changes_at_its_end_encodes_only_its_last_piece(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh: list[str] = []
    encode_fresh = tokens._encode_fresh

    def counted(text: str) -> tuple[int, ...]:
        fresh.append(text)
        return encode_fresh(text)

    monkeypatch.setattr(tokens, "_encode_fresh", counted)
    tokens.clear_cache()
    prompt = "Tell me about the sea and the ships that sail on it, please. " * 30
    first = tokens.encode(prompt + " #1")
    assert len(fresh) == len(tokens.pieces_of(prompt + " #1")) > 4
    tokens.encode(prompt + " #2")  # its shared pieces seen a second time: now they are kept
    fresh.clear()
    third = tokens.encode(prompt + " #3")
    assert fresh == [tokens.pieces_of(prompt + " #3")[-1]]
    assert first[:-1] == third[:-1] and len(first) == len(third)


def test_texts_that_never_come_back_leave_nothing_in_the_cache() -> None:
    """A new prompt every request: only the pieces the prompts share are kept, not each
    whole prompt nor its new last piece."""
    tokens.clear_cache()
    prompt = "Tell me about the sea and the ships that sail on it, please. " * 30
    shared = set(tokens.pieces_of(prompt + " #0")[:-1])
    for n in range(200):
        tokens.encode(f"{prompt} #{n}")
    assert set(tokens._encoded._items) == shared
    tokens.clear_cache()


def test_no_added_token_could_be_cut_by_a_piece() -> None:
    """What pieces_of relies on: no added token holds a space or begins or ends with an ASCII
    letter, so a cut between two letters never falls inside or beside one."""
    added = list(bpe.encoder().added)
    assert len(added) > 1000
    for content in added:
        assert " " not in content, content
        assert not (content[0].isascii() and content[0].isalpha()), content
        assert not (content[-1].isascii() and content[-1].isalpha()), content
