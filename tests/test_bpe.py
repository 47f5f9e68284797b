"""The shipped vocabulary and the one-expression pre-tokenizer give the ids DeepSeek's own
tokenizer.json gives, read by Hugging Face's `tokenizers` (the reference)."""

from __future__ import annotations

import itertools
import json
from functools import cache

import pytest
from hypothesis import given, settings, strategies as st
from tokenizers import Tokenizer

from mockserver import bpe
from tests import tokenizer_table


@cache
def reference() -> Tokenizer:
    return Tokenizer.from_file(str(tokenizer_table.tokenizer_json()))


def reference_ids(text: str) -> list[int]:
    return list(reference().encode(text, add_special_tokens=False).ids)


def test_the_shipped_table_is_what_the_tokenizer_json_gives() -> None:
    model = json.loads(tokenizer_table.tokenizer_json().read_text("utf-8"))
    ranks, added = tokenizer_table.encoded(tokenizer_table.derive(model))
    assert (bpe.table_dir() / bpe.RANKS_FILE).read_bytes() == ranks
    assert (bpe.table_dir() / bpe.ADDED_FILE).read_bytes() == added


def test_the_table_reads_back_as_the_vocabulary() -> None:
    vocabulary = reference().get_vocab()
    ranks = bpe.read_ranks(bpe.table_dir() / bpe.RANKS_FILE)
    added = bpe.read_added(bpe.table_dir() / bpe.ADDED_FILE)
    assert len(ranks) + len(added) == len(vocabulary) == 129_280
    alphabet = tokenizer_table.byte_alphabet()
    for token, i in vocabulary.items():
        if token not in added:
            assert ranks[bytes(alphabet[ch] for ch in token)] == i


# Each code point in places where a class boundary, a lookahead or a gap would show: between
# letters, doubled, after spaces, beside digits, inside a kana run, before a combining mark.
CONTEXTS = ("a{c}b", "{c}{c}", "  {c}a", "1{c}2", " {c}\n", "カ{c}カ", "{c}\u0301", "\x01{c}a")


# Planes 0-2 and 14 hold nearly every assigned code point; the rest are private use or not
# yet assigned, one class each (a one-off run over all 1.1 million in these contexts agreed).
CODE_POINTS = [
    chr(c)
    for c in itertools.chain(range(0x30000), range(0xE0000, 0xE1000))
    if not 0xD800 <= c < 0xE000
]


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_code_point_in_context_encodes_as_the_reference(context: str) -> None:
    encoder = bpe.encoder()
    for start in range(0, len(CODE_POINTS), 16_384):
        text = "".join(context.format(c=c) for c in CODE_POINTS[start : start + 16_384])
        assert encoder.encode(text) == reference_ids(text), hex(ord(CODE_POINTS[start]))


ADDED = sorted(bpe.read_added(bpe.table_dir() / bpe.ADDED_FILE))
TRICKY = "aZ 1١²½\t\n\r\x01\u200d\u0301\u3099゛・ー一カ你!<>｜:/_😊 \u3000"
text_parts = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=TRICKY, max_size=12),
    st.sampled_from(ADDED),
    st.sampled_from(["<", "｜", "<｜", "｜DSML｜", "<dsml:", "<｜/table>｜", "<think>"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(text_parts, max_size=12).map("".join))
def test_any_text_encodes_as_the_reference(text: str) -> None:
    assert bpe.encoder().encode(text) == reference_ids(text)


def test_no_added_token_starts_another() -> None:
    """What the added-token finder relies on to take the longest at a place."""
    for token in ADDED:
        assert not any(other != token and other.startswith(token) for other in ADDED), token


def test_token_bytes_spell_each_token() -> None:
    encoder = bpe.encoder()
    assert encoder.token_bytes(encoder.added["<｜User｜>"]) == "<｜User｜>".encode()
    assert b"".join(map(encoder.token_bytes, encoder.encode("Hello, 世界 😊"))) == (
        "Hello, 世界 😊".encode()
    )


def test_the_readme_check_command_finds_the_table_current() -> None:
    assert tokenizer_table.main(["--check"]) == 0
