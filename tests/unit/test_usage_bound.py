"""The bound on one reported model call (services/usage.py): no context window is larger."""

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.services.usage import MAX_CALL_TOKENS, check_call


@pytest.mark.parametrize(
    "tokens", [(0, 0), (MAX_CALL_TOKENS, 0), (0, MAX_CALL_TOKENS), (2_000_000, 2_000_000)]
)
def test_a_call_within_the_largest_context_window_is_accepted(tokens: tuple[int, int]) -> None:
    check_call(*tokens)


@pytest.mark.parametrize(
    "tokens",
    [(MAX_CALL_TOKENS + 1, 0), (0, MAX_CALL_TOKENS + 1), (2_000_001, 2_000_000),
     (10**9, 0), (-1, 5), (5, -1)],
)  # fmt: skip
def test_a_call_no_model_could_make_is_refused_saying_what_is_accepted(
    tokens: tuple[int, int],
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_call(*tokens)
    said = str(refused.value)
    assert f"cannot use {tokens[0]} input and {tokens[1]} output tokens" in said
    assert "0 to 4,000,000 tokens in and out together" in said
    assert said.endswith("Nothing was recorded")
