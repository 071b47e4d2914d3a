"""Actor names: agents choose theirs; the server's own actors and people have names no agent
may take, so the audit trail never shows an agent's move as the monitor's or a person's."""

import getpass

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
