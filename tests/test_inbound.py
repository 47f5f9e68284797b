"""A request's headers, decoded once, read as Starlette's Headers read them."""

from __future__ import annotations

from hypothesis import given, strategies as st
from starlette.datastructures import Headers

from mockserver.inbound import request_headers

_NAMES = st.sampled_from(["authorization", "x-mock-era", "x-team", "content-length", "é-x"])
_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8), _NAMES)
def test_a_header_map_answers_as_starlette_headers_do(
    pairs: list[tuple[str, str]], asked: str
) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
    scope = {"type": "http", "headers": raw}
    ours, theirs = request_headers(scope), Headers(scope=scope)
    for key in (asked, asked.upper(), asked.title()):
        assert ours.get(key) == theirs.get(key)  # a repeated header: its first value
        assert (key in ours) == (key in theirs)
    assert request_headers(scope) is ours  # made once per request
