"""What `doctor` probes of a GitLab token, without writing anything.

Each permission the merge queue needs, in GitLab's words: its scopes, its role against who
may merge into the branch, a merge request from a branch that does not exist."""

import re
import threading
import urllib.parse
from collections.abc import Callable

from wvo_mcp.errors import Fault
from wvo_mcp.forge import Access
from wvo_mcp.forge.gitlab_http import Api

ROLES = ((60, "Admin"), (50, "Owner"), (40, "Maintainer"), (30, "Developer"), (20, "Reporter"),
         (15, "Planner"), (10, "Guest"), (5, "Minimal Access"))  # fmt: skip
API_SCOPE = (
    "make a project access token with the api scope (Settings > Access tokens; a token's "
    "scopes are fixed when it is made)"
)


def access(api: Api, p: Callable[..., str], path: str, branch: str) -> list[Access]:
    """Reads where the queue reads, the token's scopes, the role against who may merge
    into `branch`, and for writes a merge request from a branch that does not exist
    (GitLab refuses it as invalid, 400, once the token may write; 403 when not).
    Nothing is written. A failing line says what to give the token, in GitLab's words."""
    reads = [
        ("project: read", p(), {}),
        ("merge requests: read", p("/merge_requests"), {"per_page": 1}),
        ("pipelines: read", p("/pipelines"), {"per_page": 1}),
        ("issues: read", p("/issues"), {"per_page": 1}),
    ]
    found = []
    for permission, path, query in reads:
        try:
            api.request("get", path, f"probing {permission}", query)
            found.append(Access(permission, True, "read"))
        except Fault as exc:
            if exc.kind not in ("auth", "refused"):
                raise
            found.append(Access(permission, False, str(exc)))
    scoped = _scopes(api)
    found.append(scoped)
    role, level = _may_merge(api, p, path, branch)
    found.append(role)
    probe = f"wvo-doctor/no-such-branch-{threading.get_ident()}"
    try:
        api.request(
            "post",
            p("/merge_requests"),
            "probing merge requests: write",
            body={
                "source_branch": probe,
                "target_branch": branch,
                "title": "wvo-mcp doctor probe",
            },
        )
        found.append(
            Access(
                "merge requests: write",
                False,
                "the probe opened a merge request from a branch that does not exist: close it",
            )
        )
    except Fault as exc:
        if exc.kind == "refused" and "(400)" in str(exc):
            found.append(Access("merge requests: write", True, "may open merge requests "
                                "(the probe, from a branch that does not exist, was "
                                "refused as invalid: nothing was opened)"))  # fmt: skip
        elif exc.kind == "auth" and (not scoped.ok or 0 <= level < 30):
            # Say which of the two it lacks, as the lines above found.
            refused = re.search(r"answered (\d+) to [^(]*\(([^)]*)\)", str(exc))
            why = f" ({refused[1]}: {refused[2]})" if refused else ""
            fix = (
                f"give the token the api scope: {API_SCOPE}"
                if not scoped.ok
                else f"give the token the Developer role at least: {role_fix('Developer')}"
            )
            said = f"GitLab refused to open a merge request{why}: {fix}"
            found.append(Access("merge requests: write", False, said))
        else:
            found.append(Access("merge requests: write", False, str(exc)))
    return found


def _scopes(api: Api) -> Access:
    """The token's scopes: the queue writes, which read_api cannot."""
    name = "token scope: api"
    try:
        token = api.get("/personal_access_tokens/self", "reading the token's scopes")
    except Fault as exc:
        if exc.kind not in ("auth", "refused"):
            raise
        return Access(name, False, str(exc))
    scopes = [str(s) for s in token.get("scopes") or []]
    said = f"scopes: {', '.join(scopes) or 'none'}"
    if "api" in scopes:
        return Access(name, True, said)
    return Access(name, False, f"{said}: the queue opens, comments on and merges merge "
                  f"requests, which read_api cannot; {API_SCOPE}")  # fmt: skip


def _may_merge(api: Api, p: Callable[..., str], path: str, branch: str) -> tuple[Access, int]:
    """Whether the token's user may merge into `branch` by the branch's protection, and
    its access level (-1: unknown)."""
    name = f"role: may merge into {branch}"
    try:
        me = api.get("/user", "reading the token's user")
        member = api.request(
            "get", p(f"/members/all/{me['id']}"), "reading the token's role", missing=True
        )
        level = 0 if member is None else int(member.get("access_level") or 0)
        protected = api.request(
            "get",
            p(f"/protected_branches/{urllib.parse.quote(branch, safe='')}"),
            f"reading who may merge into {branch}",
            missing=True,
        )
    except Fault as exc:
        if exc.kind not in ("auth", "refused"):
            raise
        return Access(name, False, str(exc)), -1
    who = f"the token's user @{me.get('username') or me['id']}"
    if me.get("bot") is False:  # the fleet acts as its own identity, as tools at scale do
        who += (" (a person's account: a project or group access token, a bot user of its "
                "own, is the norm for a fleet)")  # fmt: skip
    has = (
        f"{who} is not a member of {path}"
        if member is None
        else f"{who} is a {role_of(level)} (access level {level})"
    )
    entries = (protected or {}).get("merge_access_levels") or []
    roles = [a for a in entries if a.get("user_id") is None and a.get("group_id") is None]
    levels = [int(a.get("access_level") or 0) for a in roles]
    needed = min([lv for lv in levels if lv > 0] or [30 if protected is None else 60])
    if protected is None:
        rule = f"{branch} is not protected: Developers and above may merge into it"
    else:
        allowed = ", ".join(
            str(a.get("access_level_description") or "") or role_of(int(a["access_level"]))
            for a in roles
        )
        rule = f"{branch}'s protection lets {allowed or 'the users and groups it names'} merge"
    if level >= needed or any(a.get("user_id") == me["id"] for a in entries):
        return Access(name, True, f"{has}; {rule}"), level
    where = "Settings > Repository > Protected branches"
    if needed > 50:
        fix = f"no role may merge: allow Developers + Maintainers (or Maintainers) in {where}"
    else:
        fix = f"merging needs the {role_of(needed)} role or above: {role_fix(role_of(needed))}"
        if needed > 30:
            fix += f", or allow Developers + Maintainers to merge in {where}"
    return Access(name, False, f"{has}; {rule}: {fix}"), level


def role_fix(role: str) -> str:
    """How a token gets `role`, in GitLab's words."""
    return f"make a project access token with the {role} role (Settings > Access tokens)"


def role_of(level: int) -> str:
    """GitLab's name for an access level (the highest role at or under it)."""
    return next((name for at, name in ROLES if level >= at), "no role")
