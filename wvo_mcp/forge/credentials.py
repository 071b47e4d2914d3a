"""The person's forge token, for the autopilot's trusted side alone: from their environment
(WVO_FORGE_TOKEN, then the variables GitHub's own `gh` reads), else from `gh auth token`.
It is never written anywhere, never put in a worker's or a check's environment (their
environments are built from allowlists: autopilot/commands.py, sandbox/), and never said."""

import os
import shutil
import subprocess
from collections.abc import Mapping

GH_TIMEOUT_S = 10
PUBLIC = ("GH_TOKEN", "GITHUB_TOKEN")  # gh's own order for github.com
ENTERPRISE = ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")  # for any other host


def token(host: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The token for `host`, or None when the person has given none."""
    env = os.environ if environ is None else environ
    names = ("WVO_FORGE_TOKEN", *(PUBLIC if host == "github.com" else ENTERPRISE))
    for name in names:
        if env.get(name, "").strip():
            return env[name].strip()
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
    return found if done.returncode == 0 and found else None


def missing(host: str, what: str = "--via pull-request") -> str:
    """What to do when there is no token (a refusal's words)."""
    names = " or ".join(PUBLIC if host == "github.com" else ENTERPRISE)
    return (
        f"{what} needs a token for {host}: set WVO_FORGE_TOKEN (or {names}) in the "
        f"autopilot's environment, or log in with `gh auth login --hostname {host}`; "
        "docs/forge.md lists the permissions it needs"
    )
