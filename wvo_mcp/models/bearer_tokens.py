"""Bearer tokens as token_list and `wvo-mcp tokens list` show them: never their secret.

The HTTP server's identities (services/bearer_tokens.py keeps them); a person lists them.
"""

from typing import Literal

from pydantic import BaseModel


class TokenInfo(BaseModel):
    # One bearer token as `token_list` and `wvo-mcp tokens list` show it: never its secret.
    id: str
    name: str
    role: Literal["agent", "person", "operator"]
    created_at: str
    created_by: str
    last_used_at: str | None = None
    revoked_at: str | None = None
    expires_at: str | None = None  # a run token's: the autopilot renews it while its run lives
    task: str | None = None  # a run token's one task


class TokenList(BaseModel):
    tokens: list[TokenInfo]
