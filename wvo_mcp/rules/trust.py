"""Who may steer the fleet from a forge; everyone else's words are data (pure).

Who may steer the fleet from a forge (pure): whose review counts, whose comment answers or
tells, whose label makes a task, whose run is the landing branch's. A repository's writers
(admin, maintain, write, as the forge says) steer; a person widens or narrows that by role
(WVO_TRUST_ROLE) and by accounts or teams (WVO_TRUST). Everyone else's words are data:
recorded and shown to a person, never acted on. Carried out by
`wvo_mcp/forge/authority.py`, which every forge input asks (edge/github_webhooks.py,
edge/issue_sync.py, autopilot/landing/pull_requests.py)."""

from dataclasses import dataclass, field

from wvo_mcp.errors import ValidationFailed

# GitHub's repository roles, lowest first (a custom role is read by its base permission).
RANKS = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
LOWEST = ("triage", "write", "maintain", "admin", "nobody")  # what WVO_TRUST_ROLE takes
_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_[].")


@dataclass(frozen=True)
class Trust:
    """`role`: the lowest role whose words steer ('nobody': no role is enough, only the
    listed accounts and teams). `accounts`: logins, lowercase; `teams`: "org/team" slugs,
    lowercase, whose members steer whatever their role."""

    role: str = "write"
    accounts: frozenset[str] = field(default_factory=frozenset)
    teams: frozenset[str] = field(default_factory=frozenset)

    def by_role(self, role: str) -> bool:
        """Whether a forge role alone is enough (an unknown role is a reader's)."""
        return self.role != "nobody" and RANKS.get(role, 1) >= RANKS[self.role]

    def steers(self, login: str, role: str, teams: frozenset[str] = frozenset()) -> bool:
        """Whether `login`, of `role` on the repository and in `teams`, steers. No login (a
        deleted account, a payload without one) steers nothing; a bot only when listed (its
        role is its app's, given by whoever installed it, not a person's)."""
        name = login.strip().lower()
        if not name or name.endswith("[bot]"):
            return name in self.accounts
        return name in self.accounts or bool(teams & self.teams) or self.by_role(role)

    def asks(self, login: str) -> bool:
        """Whether the forge must be asked about `login`: its role or teams could make it
        steer, and nothing here says so already."""
        name = login.strip().lower()
        if not name or name.endswith("[bot]") or name in self.accounts:
            return False
        return self.role != "nobody" or bool(self.teams)

    def says(self) -> str:
        """What is in force, as `doctor` and the docs say it."""
        roles = [r for r in RANKS if self.role != "nobody" and RANKS[r] >= RANKS[self.role]]
        parts = [f"the repository's {', '.join(reversed(roles))}"] if roles else []
        parts += [f"@{a}" for a in sorted(self.accounts)]
        parts += [f"members of {t}" for t in sorted(self.teams)]
        who = " and ".join(parts) if parts else "nobody"
        return f"{who} steer; everyone else's words are data"


def parse(role: str, listed: str, source: str = "WVO_TRUST") -> Trust:
    """A Trust from a role and a comma-separated list of logins and org/team slugs; a
    refusal says what is accepted."""
    lowest = role.strip().lower() or "write"
    if lowest not in LOWEST:
        raise ValidationFailed(
            f"WVO_TRUST_ROLE={role!r} is not one of {', '.join(LOWEST)} (the lowest role whose "
            "reviews, comments and labels act; 'nobody': only the accounts in WVO_TRUST)"
        )
    accounts: set[str] = set()
    teams: set[str] = set()
    for raw in listed.split(","):
        entry = raw.strip().lower().removeprefix("@")
        if not entry:
            continue
        parts = entry.split("/")
        if len(parts) > 2 or not all(p and set(p) <= _LOGIN_CHARS for p in parts):
            raise ValidationFailed(
                f"{source}: {raw.strip()!r} is neither a login nor an org/team slug; give "
                "them comma-separated, e.g. alice,release-bot[bot],acme/maintainers"
            )
        (teams if len(parts) == 2 else accounts).add(entry)
    return Trust(lowest, frozenset(accounts), frozenset(teams))
