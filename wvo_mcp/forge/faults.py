"""A forge's failed request as a Fault: the kinds and words GitHub's and GitLab's clients share.

Each client reads its own library's errors (githubkit's, python-gitlab's) and its own headers
(githubkit reads GitHub's Retry-After and X-RateLimit-*; forge/gitlab_http.py reads GitLab's
Retry-After and RateLimit-Reset); what a failure then is, and how the queue is told, is one rule
for both, so that the autopilot waits out a limit or an outage the same on either forge
(autopilot/landing/target.py:OutageGuard.call holds the queue, for as long as
rules/outage.py:Outage.failed says): a rate limit is `limited`, carrying how long to hold; a
refused or revoked token, or a repository the token cannot see, is `auth`; a 5xx, a timeout or a
connection that fails is `timeout` or `unreachable`; anything else is `refused`. A failed job
whose log the token may not read still goes back to its worker, the log's place saying why."""

from collections.abc import Callable

from wvo_mcp.errors import Fault
from wvo_mcp.rules.webhooks import FailedJob, tail

NO_TIME_SECONDS = 60.0  # a limit that names no time: GitHub's docs ask a minute at least


def limited(forge: str, what: str, wait: float | None, which: str = "") -> Fault:
    """The forge's (`which`: primary, secondary) rate limit, held `wait` seconds (at least
    one), or a minute when it named no time."""
    limit = f"{forge}'s {which + ' ' if which else ''}rate limit is reached ({what})"
    if wait is None:
        return Fault(
            "limited",
            f"{limit}; it named no time: waiting {NO_TIME_SECONDS:.0f} s",
            retry_after=NO_TIME_SECONDS,
        )
    wait = max(1.0, wait)
    return Fault("limited", f"{limit}; it asked for {wait:.0f} s", retry_after=wait)


class TokenRefused(Fault):
    """A 401, an `auth` Fault a caller can tell apart: GitLab also answers 401 to a merge
    the token's user may not make (forge/gitlab.py asks which it was)."""


def token_refused(forge: str, what: str, said: str, fix: str) -> TokenRefused:
    """A 401: the token is revoked, expired or not one; `fix` says where a token is read."""
    return TokenRefused("auth", f"{forge} refused the token ({what}: {said}): {fix}")


def answered(forge: str, status: int, what: str, said: str, cannot: str) -> Fault:
    """A failed answer that is no limit and no 401: 403 and 404 are a token that cannot see
    or change `cannot` (the repository, and what it needs), 5xx the forge's outage."""
    if status in (403, 404):
        return Fault(
            "auth",
            f"{forge} answered {status} to {what} ({said}): the token cannot see or change "
            f"{cannot}",
        )
    if status >= 500:
        return Fault("unreachable", f"{forge} failed ({status}) on {what}: {said}")
    return Fault("refused", f"{forge} refused {what} ({status}): {said}")


def timed_out(forge: str, where: str, what: str) -> Fault:
    return Fault("timeout", f"{forge} ({where}) did not answer in time ({what})")


def unreachable(forge: str, where: str, what: str, exc: BaseException) -> Fault:
    return Fault(
        "unreachable", f"{forge} ({where}) cannot be reached ({what}): {type(exc).__name__}"
    )


def failed_job(name: str, url: str, log: Callable[[], str]) -> FailedJob:
    """A failed job with its log's tail; a log refused to the token is said in its place
    (the job still makes its task), an outage or a limit raises."""
    try:
        found = log()
    except Fault as exc:
        if exc.kind not in ("refused", "auth"):
            raise
        found = f"(its log could not be read: {exc})"
    return FailedJob(name, url, tail(found))
