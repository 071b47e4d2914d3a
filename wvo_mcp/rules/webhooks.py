"""A GitHub webhook delivery checked before anything reads it (pure): its size, and its
signature (`X-Hub-Signature-256`: HMAC-SHA256 of the raw body under the person's secret,
compared in constant time). The driver is edge/webhooks.py."""

import hashlib
import hmac

MAX_BYTES = 1024 * 1024  # GitHub caps a payload at 25 MB; an issue's event is a few KB
PREFIX = "sha256="


def signature(secret: str, body: bytes) -> str:
    """The header GitHub sends with `body` under `secret`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `body`'s signature under `secret` (a missing or malformed one is
    not; an empty secret signs nothing)."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(signature(secret, body), header.strip())
