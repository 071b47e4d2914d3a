"""Bearer tokens for the HTTP transport: who may call, under which name, in which role.

A token's secret is shown once, when it is made; the database keeps only its SHA-256
digest (the secrets are 256 random bits, so a slow password hash would add only latency).
Revoking holds on every server process within a second (edge/access.StoreVerifier).

Carries out `rules/identity.py`.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.rules import identity
from wvo_mcp.store import Row, Tx

Role = Literal["agent", "person", "operator"]
ROLES: tuple[Role, ...] = get_args(Role)
SECRET_PREFIX = "wvo_"
# last_used_at is written at most this often per token, so verifying rarely writes (at 1,000
# agents, once a minute was a write for every four of their calls).
USED_RESOLUTION = timedelta(minutes=10)
MAX_NAME = 200


@dataclass(frozen=True)
class Scope:
    """What a run token (the autopilot's, for one worker or reviewer run) may act on: one
    task, as its worker or as its reviewer of exactly one commit; a worker's usage reports
    only about the provider and model it was launched on (services/usage.py)."""

    task: str  # "" for a planner: it holds no task
    purpose: Literal["worker", "reviewer", "planner"]
    commit: str | None = None  # a reviewer's: the submitted commit it reviews
    provider: str | None = None  # a worker's: what the autopilot launched it on
    model: str | None = None

    def to_json(self) -> str:
        return json.dumps({"task": self.task, "as": self.purpose, "commit": self.commit,
                           "provider": self.provider, "model": self.model})  # fmt: skip

    @classmethod
    def from_json(cls, text: str | None) -> "Scope | None":
        if not text:
            return None
        found = json.loads(text)
        return cls(
            found["task"], found["as"], found.get("commit"), found.get("provider"),
            found.get("model"),
        )  # fmt: skip


@dataclass(frozen=True)
class Token:
    """A token as `tokens list` shows it (never its secret)."""

    id: str
    name: str
    role: Role
    created_at: str
    created_by: str
    last_used_at: str | None = None
    revoked_at: str | None = None
    expires_at: str | None = None  # run tokens only: the run's end, renewed while it lives
    scope: Scope | None = None  # run tokens only: the one task (and commit) they act on
    provider: str | None = None  # agent tokens: the provider it is bound to, if made with one

    @classmethod
    def from_row(cls, row: Row) -> "Token":
        return cls(
            id=row["id"],
            name=row["name"],
            role=cast(Role, row["role"]),
            created_at=row["created_at"],
            created_by=row["created_by"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
            expires_at=row["expires_at"],
            scope=Scope.from_json(row["scope"]),
            provider=row["provider"],
        )

    def shown(self) -> dict[str, str | None]:
        """What `tokens list` shows (never a secret): a run token's scope as its task."""
        fields = {k: v for k, v in vars(self).items() if k != "scope"}
        return {**fields, "task": None if self.scope is None else self.scope.task}


@dataclass(frozen=True)
class Issued:
    """A new token and its secret, which is never shown again."""

    token: Token
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actor_name(role: str, name: str) -> str:
    """The name a token acts under: an agent or operator id as given (the rules of
    `identity.check_agent_id`), a person as `person:<name>`."""
    if role not in ROLES:
        raise ValidationFailed(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationFailed(
            f"token name {name!r} must be 1-{MAX_NAME} printable characters, e.g. claude-1 "
            "for an agent or alice for a person"
        )
    if role == "person":
        return identity.person(name)
    try:
        return identity.check_agent_id(name)
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"an {role} token acts under its name as an agent id: {exc}"
        ) from None


def add(
    tx: Tx,
    role: str,
    name: str,
    by: str,
    now: datetime,
    expires_at: datetime | None = None,
    scope: Scope | None = None,
    provider: str | None = None,
    known: tuple[str, ...] = (),
) -> Issued:
    """A new token; `provider` (an agent token's, one of `known`): the provider it is bound
    to, which its agent can never change (docs/http.md)."""
    actor = actor_name(role, name)
    if provider is not None and role != "agent":
        raise ValidationFailed(
            f"--provider binds an agent token to its provider; a {role} token has none: "
            "leave it out"
        )
    if provider is not None and provider not in known:
        raise ValidationFailed(
            f"provider {provider!r} is not in the providers file; known: {', '.join(known)}"
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        id="tok-" + secrets.token_hex(4),
        name=actor,
        role=cast(Role, role),
        created_at=timeutil.to_text(now),
        created_by=by,
        expires_at=None if expires_at is None else timeutil.to_text(expires_at),
        scope=scope,
        provider=provider,
    )
    tx.run(
        "token_insert",
        {"id": token.id, "secret_sha256": digest(secret), "name": token.name,
         "role": token.role, "now": token.created_at, "by": by,
         "expires_at": token.expires_at, "scope": None if scope is None else scope.to_json(),
         "provider": provider},
    )  # fmt: skip
    return Issued(token, secret)


def find(tx: Tx, secret: str, now: datetime) -> Token | None:
    """The live (neither revoked nor expired) token whose secret this is, or None."""
    if not secret.startswith(SECRET_PREFIX):
        return None  # not one of ours: no lookup
    row = tx.one("token_by_secret", {"digest": digest(secret), "now": timeutil.to_text(now)})
    return None if row is None else Token.from_row(row)


def extend(tx: Tx, token_id: str, expires_at: datetime) -> None:
    """A run token's run lives on: so does the token (a revoked one stays revoked)."""
    tx.run("token_extend", {"id": token_id, "expires_at": timeutil.to_text(expires_at)})


def stale(token: Token, now: datetime) -> bool:
    """Whether its last use is worth recording now."""
    return token.last_used_at is None or token.last_used_at < timeutil.to_text(
        now - USED_RESOLUTION
    )


def used(tx: Tx, token_id: str, now: datetime) -> None:
    tx.run(
        "token_used",
        {"id": token_id, "now": timeutil.to_text(now),
         "stale_before": timeutil.to_text(now - USED_RESOLUTION)},
    )  # fmt: skip


def revocations(tx: Tx) -> int:
    """How many tokens were ever revoked: it changes exactly when one is."""
    row = tx.one("tokens_revoked")
    return int(row["revoked"]) if row is not None else 0


def all_tokens(tx: Tx) -> list[Token]:
    return [Token.from_row(row) for row in tx.all("tokens_all")]


def revoke(tx: Tx, token_id: str, now: datetime) -> None:
    if tx.run("token_revoke", {"id": token_id, "now": timeutil.to_text(now)}) == 0:
        known = {t.id: t for t in all_tokens(tx)}
        if token_id in known:
            raise ValidationFailed(
                f"token {token_id} was already revoked at {known[token_id].revoked_at}"
            )
        raise NotFound(f"no token with id {token_id!r}; `wvo-mcp tokens list` shows them")
