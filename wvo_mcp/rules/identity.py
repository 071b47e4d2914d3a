"""Actor names: agents choose theirs; the server's and people's are kept from them (pure).

Actor names: agents choose theirs; the server's own actors and people have names no agent
may take, so the audit trail never shows an agent's move as the monitor's or a person's. An
agent without WVO_AGENT_ID is named `<client>-<pid>` (`default_name`). An agent token bound to
one provider is checked in `services/routing.py:check_bound`, and an agent's provider and
model read in `services/routing.py:identity`, not here.

Carried out by `wvo_mcp/edge/calls.py`, `wvo_mcp/edge/access.py` and
`wvo_mcp/services/bearer_tokens.py`."""

import getpass
from collections.abc import Callable

from wvo_mcp.errors import ValidationFailed

PERSON_PREFIX = "person:"
# The server's own actors in task events and reports.
RESERVED = frozenset({"health-monitor", "scheduler", "autopilot", "cli", "resource", "wvo-mcp"})


def person(name: str | None = None) -> str:
    """A person's actor name: `person:<name>`, by default the user at the host."""
    name = (name or getpass.getuser()).strip()
    return name if name.startswith(PERSON_PREFIX) else f"{PERSON_PREFIX}{name}"


def check_agent_id(agent_id: str) -> str:
    """Refuse the names of the server's actors and of people."""
    folded = agent_id.strip().lower()
    if folded in RESERVED or folded.startswith(PERSON_PREFIX):
        raise ValidationFailed(
            f"agent_id {agent_id!r} is reserved: {', '.join(sorted(RESERVED))} and names "
            f"starting with {PERSON_PREFIX!r} belong to the server and to people; choose "
            "another name, e.g. claude-1"
        )
    if agent_id != agent_id.strip() or not agent_id.isprintable():
        raise ValidationFailed(
            f"agent_id {agent_id!r} has leading or trailing spaces or unprintable characters; "
            "use a plain name such as claude-1"
        )
    return agent_id


class OneAgent:
    """The one agent a server process acts as. A stdio server serves one client, and the
    2026-07-28 protocol has no session beyond the process; WIP limits and the audit trail
    count per agent, so a client may not switch ids to take more work. The id is the
    configured one, else the first one given, else the default once it claims work."""

    def __init__(self, configured: str | None) -> None:
        self.name = configured

    def resolve(self, given: str | None, default: Callable[[], str], *, claims: bool) -> str:
        if given is None:
            if self.name is not None:
                return self.name
            if claims:
                self.name = default()
                return self.name
            return default()
        check_agent_id(given)
        if self.name is None:
            self.name = given
        elif given != self.name:
            raise ValidationFailed(
                f"this server acts as agent {self.name!r}; it cannot switch to {given!r} "
                "(WIP limits and the audit trail count per agent). Omit agent_id or pass "
                f"{self.name!r}; another agent needs its own server process"
            )
        return given


def default_name(client: str, pid: int) -> str:
    """`<client name>-<pid>`, unless the client's name is one no agent may take."""
    try:
        return check_agent_id(f"{client}-{pid}")
    except ValidationFailed:
        return f"agent-{pid}"
