"""The forge's API and the person's token for it, for the trusted side alone.

The forge and the person's token for it, for the trusted side alone (`import github:`, the
autopilot, `doctor`, the webhook), by one rule. The API is `--forge-api`, else
WVO_FORGE_API, else the caller's own (the remote's host, or GitHub's). The token is named by
that API's host: WVO_FORGE_TOKEN, then the variables GitHub's own `gh` reads for it
(GH_TOKEN, GITHUB_TOKEN for github.com; GH_ENTERPRISE_TOKEN, GITHUB_ENTERPRISE_TOKEN for any
other host: a github.com token is never sent elsewhere), else `gh auth token --hostname`.
It is never written anywhere, never put in a worker's or a check's environment (their
environments are built from allowlists: autopilot/commands.py, sandbox/), and never said."""

import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

GH_TIMEOUT_S = 10
OWN = "WVO_FORGE_TOKEN"
PUBLIC = ("GH_TOKEN", "GITHUB_TOKEN")  # gh's own order for github.com
ENTERPRISE = ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")  # for any other host
PUBLIC_API = "https://api.github.com"
GH = "`gh auth token`"


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    source: str  # where it was read: a variable's name, or `gh auth token`


def api_of(given: str | None, setting: str, default: str) -> str:
    """The API base URL: `--forge-api`, else WVO_FORGE_API (`setting`), else `default`."""
    return (given or setting or default).strip().rstrip("/")


def host_of(api: str) -> str:
    """The host a token for `api` is named by: github.com for GitHub's public API, else the
    API's own host (an Enterprise Server's)."""
    if api.rstrip("/") == PUBLIC_API:
        return "github.com"
    return urllib.parse.urlsplit(api).hostname or api


def names(host: str) -> tuple[str, ...]:
    """The variables read for `host`, in order."""
    return (OWN, *(PUBLIC if host == "github.com" else ENTERPRISE))


def token(host: str, environ: Mapping[str, str] | None = None) -> Token | None:
    """The token for `host`, or None when the person has given none."""
    env = os.environ if environ is None else environ
    for name in names(host):
        if env.get(name, "").strip():
            return Token(env[name].strip(), name)
    gh = shutil.which("gh", path=env.get("PATH"))
    if gh is None:
        return None
    try:
        done = subprocess.run(
            [gh, "auth", "token", "--hostname", host], capture_output=True, text=True,
            timeout=GH_TIMEOUT_S, stdin=subprocess.DEVNULL,
            env={k: v for k, v in env.items() if k in ("HOME", "PATH", "XDG_CONFIG_HOME",
                                                         "GH_CONFIG_DIR")},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = done.stdout.strip()
    return Token(found, GH) if done.returncode == 0 and found else None


def _read(host: str) -> str:
    first, *rest = names(host)
    return (
        f"{first} (or {' or '.join(rest)}) in its environment, or a login with "
        f"`gh auth login --hostname {host}`"
    )


def _unread(host: str, environ: Mapping[str, str] | None) -> str:
    """The github.com variables set where the host is another: said, as they are not read."""
    env = os.environ if environ is None else environ
    if host == "github.com":
        return ""
    found = [name for name in PUBLIC if env.get(name, "").strip()]
    if not found:
        return ""
    return (
        f" ({' and '.join(found)} {'is' if len(found) == 1 else 'are'} set, but read for "
        f"github.com only: a github.com token is never sent to {host})"
    )


def missing(
    host: str, what: str = "--via pull-request", environ: Mapping[str, str] | None = None
) -> str:
    """What to do when there is no token (a refusal's words)."""
    return (
        f"{what} needs a token for {host}: give it {_read(host)}"
        f"{_unread(host, environ)}; docs/forge.md lists the permissions it needs"
    )


def refused(host: str, source: str) -> str:
    """What to do when the forge refuses the token (revoked, expired)."""
    whence = f" (read from {source})" if source else ""
    return f"give a valid token for {host}{whence}: {_read(host)}"
