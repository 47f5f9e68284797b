"""Random identifiers: the forms the dialects send, never repeated by a seeded `random` or a
forked worker."""

from __future__ import annotations

import os
import random
import re
import string
import uuid

from hypothesis import given, strategies as st

from mockserver import ids


def test_uuid4_is_a_version_4_uuid_in_its_usual_text() -> None:
    for _ in range(2_000):
        text = ids.uuid4()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case, dashes where uuid.uuid4() puts them


def test_uuid4_uses_all_its_random_bits() -> None:
    # Every hex place that is not the version or variant takes more than one value.
    texts = [ids.uuid4().replace("-", "") for _ in range(500)]
    for place in range(32):
        seen = {text[place] for text in texts}
        if place == 12:
            assert seen == {"4"}
        elif place == 16:
            assert seen <= set("89ab") and len(seen) > 1
        else:
            assert len(seen) > 8, place


@given(st.integers(min_value=1, max_value=64))
def test_hex_token_has_two_hex_digits_a_byte(nbytes: int) -> None:
    assert re.fullmatch(f"[0-9a-f]{{{2 * nbytes}}}", ids.hex_token(nbytes))


@given(st.text(string.ascii_letters + string.digits, min_size=1), st.integers(0, 64))
def test_pick_draws_from_its_alphabet(alphabet: str, length: int) -> None:
    picked = ids.pick(alphabet, length)
    assert len(picked) == length
    assert set(picked) <= set(alphabet)


def test_seeding_random_does_not_repeat_ids() -> None:
    # pytest-randomly and Hypothesis seed the `random` module before each test; answers
    # given in two such tests must still have different ids.
    random.seed(1234)
    first = ids.uuid4(), ids.hex_token(16), ids.pick(string.ascii_letters, 24)
    random.seed(1234)
    second = ids.uuid4(), ids.hex_token(16), ids.pick(string.ascii_letters, 24)
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_a_forked_worker_draws_ids_of_its_own() -> None:
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and leaves
        try:
            os.write(writer, "".join(ids.uuid4() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        theirs = pipe.read().decode()
    os.waitpid(child, 0)
    ours = "".join(ids.uuid4() for _ in range(4))
    assert len(theirs) == len(ours) == 4 * 36
    assert theirs != ours
