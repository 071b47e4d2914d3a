"""Cached input counts at its price: a read at a tenth of new input, a write at 1.25."""

from wvo_mcp.rules.billing import anthropic_input, openai_input


def test_claudes_cache_reads_count_at_a_tenth_and_writes_at_a_quarter_more() -> None:
    usage = {"input_tokens": 1200, "cache_creation_input_tokens": 300,
             "cache_read_input_tokens": 4000, "output_tokens": 25}  # fmt: skip
    assert anthropic_input(usage) == 1200 + 375 + 400
    # A typical worker turn: a large cached context, little new input.
    assert anthropic_input({"input_tokens": 50, "cache_read_input_tokens": 200_000}) == 20_050
    assert anthropic_input({"input_tokens": True, "cache_read_input_tokens": -5}) == 0


def test_codexs_input_counts_its_cached_part_at_a_tenth() -> None:
    assert openai_input({"input_tokens": 1500, "cached_input_tokens": 500}) == 1050
    assert openai_input({"input_tokens": 100, "cached_input_tokens": 900}) == 10  # never more
    assert openai_input({"input_tokens": 100}) == 100
