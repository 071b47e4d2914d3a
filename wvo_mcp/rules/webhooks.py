"""A GitHub webhook delivery checked before anything reads it (pure): its size, and its
signature (`X-Hub-Signature-256`: HMAC-SHA256 of the raw body under the person's secret,
compared in constant time); and a red run's failing job as its task shows it. The driver
is edge/webhooks.py."""

import hashlib
import hmac
import re
from dataclasses import dataclass

from wvo_mcp.rules.text import shown

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


RED = frozenset({"failure", "timed_out", "startup_failure"})  # a run's or job's conclusion
GREEN = frozenset({"success"})
LOG_LINES = 60  # of a failing job's log, in its red task's description
LOG_CHARS = 6000
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # a terminal's colour or cursor move


@dataclass(frozen=True)
class FailedJob:
    """A red workflow run's first failing job: its name, link and log's tail."""

    name: str
    url: str
    log: str


def tail(log: str) -> str:
    """A log's last lines as plain text: terminal escapes and control characters dropped
    (it is shown to agents and people as data), at most LOG_LINES lines and LOG_CHARS."""
    lines = shown(_ESCAPE.sub("", log.replace("\r\n", "\n"))).rstrip("\n").split("\n")
    return "\n".join(lines[-LOG_LINES:])[-LOG_CHARS:]


@dataclass(frozen=True)
class Run:
    """A workflow run or a check suite that ended on the landing branch (services/deliveries
    makes or ends its red task): `key` names the workflow (its id) or the app (`app-<id>`)."""

    event: str  # workflow_run | check_suite
    repository: str
    name: str
    key: str
    branch: str
    sha: str
    url: str
    passed: bool
    job: FailedJob | None = None
