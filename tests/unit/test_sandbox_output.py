"""Output capping keeps the last bytes and says how much was cut."""

from wvo_mcp.sandbox.output import Tail


def test_short_output_is_kept_whole() -> None:
    tail = Tail(10)
    tail.write(b"abc")
    tail.write(b"def")
    assert not tail.truncated and tail.text() == "abcdef"


def test_long_output_keeps_exactly_the_tail_across_chunks() -> None:
    tail = Tail(10)
    for chunk in [b"0123", b"4567", b"89ab", b"cdef"]:
        tail.write(chunk)
    assert tail.truncated and tail.total == 16
    assert tail.text() == "[... 6 earlier bytes cut; the last 10 follow]\n6789abcdef"


def test_one_chunk_larger_than_the_limit() -> None:
    tail = Tail(5)
    tail.write(b"x" * 100 + b"END")
    assert tail.text().endswith("\nxxEND") and "98 earlier bytes cut" in tail.text()


def test_a_multibyte_character_cut_in_half_does_not_break_decoding() -> None:
    tail = Tail(5)
    tail.write("é".encode() * 10)  # 20 bytes; the kept 5 start mid-character
    assert tail.text().endswith("éé")
