"""Who steers the fleet from a forge: each account's role, read and kept for a while.

Who steers the fleet from a forge, as rules/trust.py says, with each account's role (and
team membership, where teams are trusted) read from the forge and kept for a bounded time.
Every forge input asks it before it acts: a comment (edge/issue_sync.py, edge/github_webhooks.py), a
label, an issue's edit, a review (autopilot/landing/pull_requests.py). Its calls block: run them
off the event loop."""

import threading
import time
from collections.abc import Callable

from wvo_mcp.errors import Fault
from wvo_mcp.forge import Forge
from wvo_mcp.rules.trust import Trust

TTL = 300.0  # seconds a role is believed: a writer removed steers for at most this long
ENTRIES = 4096  # accounts kept; past it the cache starts again


class Authority:
    def __init__(
        self, forge: Forge, trust: Trust, ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.forge = forge
        self.trust = trust
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, bool]] = {}

    def steers(self, login: str) -> bool:
        """Whether `login`'s words act. An account the forge does not know is a reader's.
        Raises errors.Fault when the forge cannot be asked."""
        name = login.strip().lower()
        if not self.trust.asks(name):
            return self.trust.steers(name, "none")
        now = self._clock()
        with self._lock:
            found = self._known.get(name)
        if found is not None and now - found[0] < self.ttl:
            return found[1]
        steers = self._asked(name)
        with self._lock:
            if len(self._known) >= ENTRIES:
                self._known.clear()
            self._known[name] = (now, steers)
        return steers

    def _asked(self, login: str) -> bool:
        role = self.forge.permission(login) if self.trust.role != "nobody" else "none"
        if self.trust.steers(login, role):
            return True
        teams = frozenset(t for t in sorted(self.trust.teams) if self._member(t, login))
        return self.trust.steers(login, role, teams)

    def _member(self, team: str, login: str) -> bool:
        try:
            return self.forge.member(team, login)
        except Fault as exc:
            if exc.kind == "auth":  # the token cannot read the team: its members are unknown
                return False
            raise
