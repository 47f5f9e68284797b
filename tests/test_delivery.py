"""How an unpaced stream's frames are joined into writes."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, strategies as st

from mockserver.delivery import WRITE_BYTES, batched

frames_of = st.lists(
    st.integers(min_value=1, max_value=WRITE_BYTES + 10).map(lambda n: b"x" * (n - 1) + b"\n"),
    max_size=40,
)


@given(frames_of)
def test_writes_hold_the_frames_in_order_and_are_no_longer_than_they_need(
    frames: list[bytes],
) -> None:
    writes = list(batched(frames))
    assert b"".join(writes) == b"".join(frames)
    assert all(writes)  # never an empty write
    ends = iter(frames)
    for i, write in enumerate(writes):
        taken: list[bytes] = []
        while sum(map(len, taken)) < len(write):
            taken.append(next(ends))
        assert b"".join(taken) == write  # a write ends where a frame ends
        if i < len(writes) - 1:
            assert len(write) >= WRITE_BYTES  # only the last write is short
        assert len(write) - len(taken[-1]) < WRITE_BYTES  # its last frame was needed


def test_a_write_is_made_only_when_asked_for() -> None:
    # A client that reads slowly holds one joined write, not the frames still to come.
    made: list[int] = []

    def frames() -> Iterator[bytes]:
        for i in range(10):
            made.append(i)
            yield b"y" * (WRITE_BYTES // 2)

    writes = batched(frames())
    assert len(next(writes)) == WRITE_BYTES
    assert made == [0, 1]
