"""A worker's output cut into lines (autopilot/lines.py): whatever bytes arrive, in whatever
pieces, the lines within the limit come out whole and in order, a longer one is dropped and
counted once, and no more than the limit is ever held."""

from hypothesis import given, settings
from hypothesis import strategies as st

from wvo_mcp.autopilot.lines import Lines

LIMIT = 64


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` in pieces of the given sizes (the rest in one)."""
    pieces, at = [], 0
    for size in sizes:
        pieces.append(data[at : at + size])
        at += size
    return [*pieces, data[at:]]


# Bytes heavy in newlines, NULs, bytes of broken UTF-8 and runs longer than the limit.
ALPHABET = st.sampled_from([b"\n", b"\x00", b"\xff", b"\xe2\x82", b"a", b"b" * LIMIT])
STREAMS = st.lists(ALPHABET, max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(data=STREAMS, sizes=st.lists(st.integers(0, 3 * LIMIT), max_size=20))
def test_lines_are_whole_in_order_and_bounded_however_they_arrive(
    data: bytes, sizes: list[int]
) -> None:
    lines = Lines(LIMIT)
    found = []
    for piece in cut(data, sizes):
        found += lines.feed(piece)
        assert len(lines._held) <= LIMIT
    last = lines.end()
    if last is not None:
        found.append(last)
    *complete, tail = data.split(b"\n")
    expected = [line for line in complete if len(line) <= LIMIT]
    if tail and len(tail) <= LIMIT:
        expected.append(tail)
    assert found == expected
    assert lines.dropped == sum(len(line) > LIMIT for line in [*complete, tail])
    assert lines.ended == len(complete)


def test_an_endless_line_is_dropped_once_and_the_next_one_kept() -> None:
    lines = Lines(LIMIT)
    for _ in range(1000):  # 64 KB and no newline: nothing is held past the limit
        assert lines.feed(b"x" * LIMIT + b"y") == []
    assert (lines.dropped, lines.ended) == (1, 0)
    assert lines.feed(b"still the long one\nnext\n") == [b"next"]
    assert (lines.dropped, lines.ended) == (1, 2)
    assert lines.end() is None
