"""The forge's API and the person's token for it, for the trusted side alone.

The forge and the person's token for it, for the trusted side alone (`import`, the
autopilot, `doctor`, the webhook), by one rule. The API is `--forge-api`, else
WVO_FORGE_API, else the caller's own (the remote's host, or GitHub's: forge/select.py). The
token is named by that API's host and its kind of forge: WVO_FORGE_TOKEN, then the variables
the forge's own CLI reads for that host, else that CLI's login for it. GitHub's `gh`: GH_TOKEN,
GITHUB_TOKEN for github.com; GH_ENTERPRISE_TOKEN, GITHUB_ENTERPRISE_TOKEN for any other host
(a github.com token is never sent elsewhere); `gh auth token --hostname`. GitLab's `glab`:
GITLAB_TOKEN, GITLAB_ACCESS_TOKEN, OAUTH_TOKEN, for the host glab itself sends them to
(GITLAB_HOST, GITLAB_URI or GL_HOST, else gitlab.com; a token for one host is never sent to
another); `glab config get token --host`. `gh` is never asked for a GitLab host, nor `glab`
for a GitHub one. The token is never written anywhere, never put in a worker's or a check's
environment (their environments are built from allowlists: autopilot/worker_config.py, sandbox/),
and never said."""

import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from wvo_mcp.rules.text import ForgeKind

GH_TIMEOUT_S = 10
OWN = "WVO_FORGE_TOKEN"
PUBLIC = ("GH_TOKEN", "GITHUB_TOKEN")  # gh's own order for github.com
ENTERPRISE = ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")  # for any other host
PUBLIC_API = "https://api.github.com"
GH = "`gh auth token`"
GITLAB = ("GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN", "OAUTH_TOKEN")  # glab's own order
GITLAB_HOSTS = ("GITLAB_HOST", "GITLAB_URI", "GL_HOST")  # where glab sends them
GITLAB_PUBLIC = "gitlab.com"  # glab's host when none of GITLAB_HOSTS is set
GLAB = "`glab config get token`"


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    source: str  # where it was read: a variable's name, `gh auth token` or `glab config …`


def api_of(given: str | None, setting: str, default: str) -> str:
    """The API base URL: `--forge-api`, else WVO_FORGE_API (`setting`), else `default`."""
    return (given or setting or default).strip().rstrip("/")


def host_of(api: str) -> str:
    """The host a token for `api` is named by: github.com for GitHub's public API, else the
    API's own host (an Enterprise Server's, a GitLab's)."""
    if api.rstrip("/") == PUBLIC_API:
        return "github.com"
    return urllib.parse.urlsplit(api).hostname or api


def gitlab_host(environ: Mapping[str, str] | None = None) -> str:
    """The host glab sends GITLAB_TOKEN and its like to: GITLAB_HOST (GITLAB_URI, GL_HOST),
    a URL or a host name, else gitlab.com."""
    env = os.environ if environ is None else environ
    named = next((env[n].strip() for n in GITLAB_HOSTS if env.get(n, "").strip()), "")
    if not named:
        return GITLAB_PUBLIC
    found = urllib.parse.urlsplit(named if "://" in named else f"//{named}").hostname
    return (found or named).lower()


def names(
    host: str, kind: ForgeKind = "github", environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The variables read for `host`, in order."""
    if kind == "gitlab":
        return (OWN, *(GITLAB if host == gitlab_host(environ) else ()))
    return (OWN, *(PUBLIC if host == "github.com" else ENTERPRISE))


def token(
    host: str, environ: Mapping[str, str] | None = None, kind: ForgeKind = "github"
) -> Token | None:
    """The token for `host`, or None when the person has given none."""
    env = os.environ if environ is None else environ
    for name in names(host, kind, env):
        if env.get(name, "").strip():
            return Token(env[name].strip(), name)
    if kind == "gitlab":
        return _asked(env, "glab", ["config", "get", "token", "--host", host],
                      "GLAB_CONFIG_DIR", GLAB)  # fmt: skip
    return _asked(env, "gh", ["auth", "token", "--hostname", host], "GH_CONFIG_DIR", GH)


def _asked(
    env: Mapping[str, str], cli: str, args: list[str], config_dir: str, source: str
) -> Token | None:
    """The token the forge's own CLI keeps for the host, asked with an allowlisted
    environment (its configuration's place only: no token variable reaches it)."""
    found = shutil.which(cli, path=env.get("PATH"))
    if found is None:
        return None
    try:
        done = subprocess.run(
            [found, *args], capture_output=True, text=True, timeout=GH_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in env.items() if k in ("HOME", "PATH", "XDG_CONFIG_HOME",
                                                         config_dir)},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    said = done.stdout.strip()
    return Token(said, source) if done.returncode == 0 and said else None


def _read(host: str, kind: ForgeKind, environ: Mapping[str, str] | None) -> str:
    first, *rest = names(host, kind, environ)
    variables = f"{first} (or {' or '.join(rest)})" if rest else first
    if kind == "gitlab":
        elsewhere = "" if rest else f" (or {GITLAB[0]} with GITLAB_HOST={host})"
        return (
            f"{variables}{elsewhere} in its environment, or a login with "
            f"`glab auth login --hostname {host}`"
        )
    return f"{variables} in its environment, or a login with `gh auth login --hostname {host}`"


def _unread(host: str, kind: ForgeKind, environ: Mapping[str, str] | None) -> str:
    """The variables set for another host: said, as they are not read."""
    env = os.environ if environ is None else environ
    owner = gitlab_host(env) if kind == "gitlab" else "github.com"
    found = [n for n in (GITLAB if kind == "gitlab" else PUBLIC) if env.get(n, "").strip()]
    if host == owner or not found:
        return ""
    why = " (GITLAB_HOST names the host they are for)" if kind == "gitlab" else ""
    return (
        f" ({' and '.join(found)} {'is' if len(found) == 1 else 'are'} set, but read for "
        f"{owner} only{why}: a {owner} token is never sent to {host})"
    )


def missing(
    host: str,
    what: str = "--via pull-request",
    environ: Mapping[str, str] | None = None,
    kind: ForgeKind = "github",
) -> str:
    """What to do when there is no token (a refusal's words)."""
    return (
        f"{what} needs a token for {host}: give it {_read(host, kind, environ)}"
        f"{_unread(host, kind, environ)}; docs/forge.md lists the permissions it needs"
    )


def refused(host: str, source: str, kind: ForgeKind = "github") -> str:
    """What to do when the forge refuses the token (revoked, expired)."""
    whence = f" (read from {source})" if source else ""
    return f"give a valid token for {host}{whence}: {_read(host, kind, None)}"
