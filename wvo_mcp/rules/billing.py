"""How a model's reported usage counts against budgets and prices, in new-input tokens (pure).

How a model's reported usage counts against budgets and prices (pure): in tokens of new
input, each kind of input at its price. A cache read costs a tenth of new input, a cache
write a quarter more (Anthropic's prices, and OpenAI's for cached input): counting a cache
read as new input made ten worker runs of Claude Code spend a day's default budget.

Carried out by `wvo_mcp/sandbox/meter.py` and `wvo_mcp/autopilot/worker_output.py`."""

from collections.abc import Mapping

CACHE_READ = 0.1  # of a new input token's price
CACHE_WRITE = 1.25


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def anthropic_input(usage: Mapping[str, object]) -> int:
    """Claude's `usage`: new input, cache writes and cache reads, each at its price."""
    return round(
        _count(usage.get("input_tokens"))
        + CACHE_WRITE * _count(usage.get("cache_creation_input_tokens"))
        + CACHE_READ * _count(usage.get("cache_read_input_tokens"))
    )


def openai_input(usage: Mapping[str, object]) -> int:
    """Codex's `usage`: `input_tokens` counts its cached part (`cached_input_tokens`) too."""
    total = _count(usage.get("input_tokens"))
    cached = min(total, _count(usage.get("cached_input_tokens")))
    return round(total - cached + CACHE_READ * cached)


# The most one Messages API request can be billed, for a response whose usage cannot be read
# (sandbox/meter.py charges it): a full context window of new input (the largest a Claude
# model takes) and the request's own max_tokens of output, or this where it gave none, for
# each answer it asks for (rules/wire.py): as many as the most Chat Completions takes (`n`)
# where what it asks for cannot be read.
CEILING_INPUT = 1_000_000
CEILING_OUTPUT = 128_000
CEILING_ANSWERS = 128
# No request's output is charged more: far past any API's bill, while a tally of a million
# runs' still fits the store's 64-bit integers (a worker's `max_tokens: 1e30` would not).
MOST_OUTPUT = 10**12


def streamed_output(delta: Mapping[str, object]) -> int:
    """An upper bound on the output tokens one `content_block_delta` carried: its text's bytes
    (a token is at least one byte), and at least one. The meter charges this for a stream cut
    before its `message_delta` said the figure."""
    text = (v for k, v in delta.items() if k != "type" and isinstance(v, str))
    return max(1, sum(len(v.encode()) for v in text))
