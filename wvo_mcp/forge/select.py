"""Which forge a remote or a repository name points at, and a client for it with the person's token.

The queue, `doctor`, `import` and the webhook all find their forge by this one rule, so
they never disagree on which API a repository lives behind or which token is sent there.
The API's kind is read from `--forge-api` (else WVO_FORGE_API) when given: a path ending in
/api/v4 is GitLab's, anything else GitHub's (api.github.com or an Enterprise Server's
/api/v3, as before). Without one, the remote's host decides: github.com is GitHub,
gitlab.com and a host whose name says "gitlab" are GitLab (https://HOST/api/v4), any other
host an Enterprise Server. A GitLab project's path keeps all its namespaces
(group/sub/project); a GitHub repository is owner/name. Locating is pure; `connect` reads
the token (forge/credentials.py) and builds the client.
"""

import urllib.parse
from dataclasses import dataclass
from typing import get_args

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.forge import Forge, github_app
from wvo_mcp.forge.credentials import PUBLIC_API, Token, host_of, missing, token
from wvo_mcp.git.remote import redact
from wvo_mcp.rules.text import ForgeKind

GITLAB_API = "https://gitlab.com/api/v4"
DEFAULT_API: dict[ForgeKind, str] = {"github": PUBLIC_API, "gitlab": GITLAB_API}
EXAMPLE: dict[ForgeKind, str] = {"github": "github:OWNER/REPO", "gitlab": "gitlab:GROUP/PROJECT"}


@dataclass(frozen=True)
class Located:
    """A repository on a forge: which kind of forge, its API base URL, the repository's path
    there (owner/name; a GitLab project's full path) and the host its token is named by."""

    kind: ForgeKind
    api: str
    repository: str
    host: str


def kind_of(api: str) -> ForgeKind:
    """The kind of forge an API base URL belongs to: GitLab's REST API is /api/v4."""
    path = urllib.parse.urlsplit(api.strip()).path.rstrip("/")
    return "gitlab" if path.endswith("/api/v4") else "github"


def locate(url: str, api: str | None = None) -> Located:
    """The forge behind a git remote's URL (https://host/path.git, ssh://git@host:port/path
    or git@host:path.git), and the repository there; `api` (--forge-api, else WVO_FORGE_API)
    decides the forge when given (pure)."""
    bare = url.strip()
    if "://" in bare:
        parsed = urllib.parse.urlsplit(bare)
        host, path = parsed.hostname or "", parsed.path
    else:  # scp-like: [user@]host:path
        where, _, path = bare.partition(":")
        host = where.rpartition("@")[2]
    given = (api or "").strip().rstrip("/")
    if given:
        kind = kind_of(given)
    elif host == "gitlab.com" or "gitlab" in host.lower():
        kind = "gitlab"
    else:
        kind = "github"
    found = given or (
        PUBLIC_API if host == "github.com"
        else f"https://{host}/api/v4" if kind == "gitlab"
        else f"https://{host}/api/v3"
    )  # fmt: skip
    parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
    if kind == "gitlab":
        parts = _under_root(parts, host, found)
        if not host or len(parts) < 2 or "-" in parts:
            raise ValidationFailed(
                f"the remote's URL {redact(url)!r} names no project on GitLab "
                "(group/project, or group/subgroup/project): --via pull-request lands through "
                "the forge that hosts the remote; on an instance under a relative URL root, "
                "give --forge-api https://HOST/ROOT/api/v4"
            )
        return Located("gitlab", found, "/".join(parts), host_of(found))
    if not host or len(parts) < 2:
        raise ValidationFailed(
            f"the remote's URL {redact(url)!r} names no repository on a forge (owner/name): "
            "--via pull-request lands through the forge that hosts the remote"
        )
    return Located("github", found, f"{parts[-2]}/{parts[-1]}", host_of(found))


def _under_root(parts: list[str], host: str, api: str) -> list[str]:
    """A GitLab project's path without the instance's relative URL root (/gitlab in
    https://host/gitlab/api/v4), when the remote is on the API's host and under that root."""
    where = urllib.parse.urlsplit(api)
    root = [p for p in where.path.rstrip("/").removesuffix("/api/v4").split("/") if p]
    if root and where.hostname == host and parts[: len(root)] == root:
        return parts[len(root) :]
    return parts


def named(spec: str, api: str | None = None) -> Located:
    """A repository named as github:OWNER/REPO or gitlab:GROUP/…/PROJECT (`import`), or as a
    bare path (a webhook's repository: the forge of `api`, else GitHub); `api` (--forge-api,
    else WVO_FORGE_API) when given, else the kind's public API (pure)."""
    given = (api or "").strip().rstrip("/")
    prefix, colon, rest = spec.strip().partition(":")
    if colon and prefix in get_args(ForgeKind):
        kind: ForgeKind = "gitlab" if prefix == "gitlab" else "github"
        if given and kind_of(given) != kind:
            raise ValidationFailed(
                f"{spec!r} names a repository on {_forge_name(kind)}, but the forge's API is "
                f"{given} ({_forge_name(kind_of(given))}'s, from --forge-api or "
                f"WVO_FORGE_API): give {_forge_name(kind)}'s API base URL "
                f"({'https://HOST/api/v4' if kind == 'gitlab' else 'https://HOST/api/v3'}), "
                "or name the repository on that forge"
            )
    elif colon:
        raise ValidationFailed(
            f"{spec!r} names no forge: give github:OWNER/REPO or gitlab:GROUP/PROJECT "
            "(gitlab:group/subgroup/project)"
        )
    else:
        kind, rest = (kind_of(given) if given else "github"), spec
    repository = rest.strip().strip("/")
    parts = repository.split("/")
    if not all(parts) or (len(parts) != 2 if kind == "github" else len(parts) < 2):
        raise ValidationFailed(
            f"{spec!r} names no repository: give {EXAMPLE[kind]} ("
            + ("github:team/project)" if kind == "github" else "gitlab:group/subgroup/project)")
        )
    found = given or DEFAULT_API[kind]
    return Located(kind, found, repository, host_of(found))


def _forge_name(kind: ForgeKind) -> str:
    return "GitLab" if kind == "gitlab" else "GitHub"


def connect(located: Located, timeout: float, what: str = "--via pull-request") -> Forge:
    """A client for the located repository, with the person's token for its host; refused
    (ValidationFailed, saying where a token is read) when they have given none. `what` names
    the command that needs it."""
    app = github_app.configured() if located.kind == "github" else None
    if app is not None:
        return as_app(located, app, timeout)
    found = token(located.host, kind=located.kind)
    if found is None:
        raise ValidationFailed(missing(located.host, what, kind=located.kind))
    return client(located, found, timeout)


def client(located: Located, found: Token, timeout: float) -> Forge:
    """The forge's client for the located repository, asked with token `found`."""
    if located.kind == "gitlab":
        from wvo_mcp.forge import gitlab  # python-gitlab: only for GitLab's way of landing

        return gitlab.GitLab(located.api, located.repository, found.value, timeout, found.source)
    from wvo_mcp.forge import github  # githubkit: only for this way of landing

    return github.GitHub(located.api, located.repository, found.value, timeout, found.source)


def as_app(located: Located, app: "github_app.App", timeout: float) -> Forge:
    """The GitHub client for the located repository, asked as GitHub App `app`'s
    installation there (forge/github_app.py)."""
    from wvo_mcp.forge import github

    return github.GitHub(located.api, located.repository, "", timeout, app=app)
