"""Which server process leads the health monitor: a lease row, taken, renewed, given up.

Each function runs inside one transaction; the loop that calls them is monitor.py's
(`HealthMonitor.run`), and a tick's writes check the lead is still held
(`service.py:record_tick`)."""

from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.store import Tx

ROLE = "health-monitor"


@dataclass(frozen=True, slots=True)
class Leadership:
    holder: str
    term: int
    expires_at: datetime

    def held_by(self, me: str) -> bool:
        return self.holder == me


class NotLeader(Exception):
    """Another process took over between observing and acting; this tick writes nothing."""


def take_leadership(tx: Tx, me: str, now: datetime, lease_seconds: float) -> Leadership:
    """Renew or take the leader lease if free; returns whoever leads afterwards."""
    stamp = timeutil.to_text(now)
    tx.run(
        "take_leadership",
        {"role": ROLE, "me": me, "now": stamp, "expires": timeutil.after(now, lease_seconds)},
    )
    row = tx.one("leadership", (ROLE,))
    assert row is not None
    return Leadership(row["holder"], row["term"], timeutil.from_text(row["expires_at"]))


def release_leadership(tx: Tx, me: str, now: datetime) -> None:
    tx.run("release_leadership", {"role": ROLE, "me": me, "now": timeutil.to_text(now)})
