"""How often the autopilot asks a remote that did not answer again, and when it says so (pure).

How often the autopilot asks a remote that did not answer (pure): after as long as it
asked (a rate limit's time), else soon at first, then less often; each outage said once,
when it starts and when it ends.

Carried out by `wvo_mcp/autopilot/landing/target.py` and `wvo_mcp/cli/roadmap.py`."""

from dataclasses import dataclass

FIRST_SECONDS = 2.0
MOST_SECONDS = 60.0


@dataclass
class Outage:
    kind: str = ""  # what is wrong ('' while the remote answers)
    why: str = ""
    since: float | None = None
    retry_at: float = 0.0
    delay: float = 0.0

    def ready(self, now: float) -> bool:
        """Whether the remote may be asked now."""
        return self.since is None or now >= self.retry_at

    def failed(self, now: float, kind: str, why: str, asked: float = 0.0) -> bool:
        """Another failure: the next try waits as long as the remote asked (`asked`: a rate
        limit's Retry-After or reset), and no longer; where it named no time, twice as long
        as the last (up to MOST_SECONDS). True when it is news to say: the outage starts, or
        what is wrong changed."""
        news = self.since is None or kind != self.kind
        if asked > 0:
            self.delay = asked
        elif self.since is None:
            self.delay = FIRST_SECONDS
        else:
            self.delay = min(MOST_SECONDS, 2 * self.delay)
        self.since = now if self.since is None else self.since
        self.retry_at = now + self.delay
        self.kind, self.why = kind, why
        return news

    def answered(self, now: float) -> float | None:
        """The remote answered: how long the outage lasted, or None if there was none."""
        if self.since is None:
            return None
        lasted = now - self.since
        self.kind, self.why, self.since, self.retry_at, self.delay = "", "", None, 0.0, 0.0
        return lasted
