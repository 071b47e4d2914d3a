"""The coding CLIs on PATH: found, versions checked, and whether each is signed in.

The coding CLIs on PATH that agents and the autopilot run: found, their versions read and
checked, and whether they are signed in, asked without spending a token."""

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.rules import acp_agents, wire

KINDS = ("claude", "codex", "gemini", "opencode")
# The oldest releases the autopilot was tested with (tests/claude_code/package.json pins the
# newest): older ones lack flags it passes (--strict-mcp-config, --setting-sources,
# `exec --json --ephemeral`, --allowed-mcp-server-names).
OLDEST: dict[str, tuple[int, ...]] = {
    "claude": (2, 1), "codex": (0, 169), "gemini": (0, 61), "opencode": (1, 18),
}  # fmt: skip
UPGRADE = {
    "claude": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "gemini": "npm install -g @google/gemini-cli",
    "opencode": "npm install -g opencode-ai",
}
# Where Gemini CLI keeps a Google sign-in, under the home (it has no status command).
GEMINI_SIGN_IN = Path(".gemini") / "oauth_creds.json"
GEMINI_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
# Where OpenCode keeps what `opencode auth login` signed in to, under its data folder.
OPENCODE_SIGN_IN = Path("opencode") / "auth.json"
PROBE_TIMEOUT_S = 30
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Cli:
    kind: str
    path: Path
    version: str  # as it printed it; "" when it printed none
    usable: bool
    note: str  # why not, or what was found


def version_of(text: str) -> tuple[int, ...] | None:
    found = _VERSION.search(text)
    if found is None:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def judge(kind: str, path: Path, printed: str) -> Cli:
    """Whether the CLI that printed `printed` for --version is one the autopilot can run."""
    version = version_of(printed)
    shown = ".".join(map(str, version)) if version else ""
    oldest = ".".join(map(str, OLDEST[kind]))
    if version is None:
        return Cli(kind, path, "", False, f"`{path} --version` printed no version")
    if version < OLDEST[kind]:
        return Cli(
            kind,
            path,
            shown,
            False,
            f"{kind} {shown} is older than {oldest}, the oldest wvo-mcp works with; "
            f"upgrade it ({UPGRADE[kind]}) and run init again",
        )
    return Cli(kind, path, shown, True, f"{kind} {shown} at {path}")


def find() -> list[Cli]:
    """Each known CLI on PATH, judged by what its --version prints."""
    # Side by side: each probe is a Node start, about 0.2 s of waiting.
    with ThreadPoolExecutor(len(KINDS)) as pool:
        return [cli for cli in pool.map(_probe, KINDS) if cli is not None]


def _probe(kind: str) -> Cli | None:
    where = shutil.which(kind)
    if where is None:
        return None
    path = Path(where)
    try:
        run = subprocess.run(
            [where, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Cli(kind, path, "", False, f"`{where} --version` failed: {exc}")
    return judge(kind, path, run.stdout + run.stderr)


def opencode_api(env: Mapping[str, str] = os.environ) -> wire.Api:
    """The model API an OpenCode worker is given: the first whose key is in `env`
    (Anthropic's, OpenAI's, Gemini's), Anthropic's without one."""
    return next((api for api, (*_, key) in acp_agents.APIS.items() if env.get(key)), "anthropic")


def signed_in(cli: Cli, env: Mapping[str, str] = os.environ) -> tuple[bool, str]:
    """Whether the CLI has credentials, as it reports them itself (no model request: that
    would spend tokens, so a key that is present but revoked still shows as signed in);
    Gemini CLI's and OpenCode's, from a key's variable or their sign-in files."""
    if cli.kind == "opencode":
        key = acp_agents.APIS[opencode_api(env)][2]
        if env.get(key):
            return True, f"signed in ({key})"
        data = env.get("XDG_DATA_HOME") or str(
            Path(env.get("HOME", "/nonexistent")) / ".local/share"
        )
        if (Path(data) / OPENCODE_SIGN_IN).is_file():
            return True, "signed in (`opencode auth login`)"
        keys = ", ".join(key for *_, key in acp_agents.APIS.values())
        return False, f"not signed in: set one of {keys}, or run `opencode auth login`"
    if cli.kind == "gemini":
        found = next((k for k in GEMINI_KEYS if env.get(k)), None)
        if found is not None:
            return True, f"signed in ({found})"
        if (Path(env.get("HOME", "/nonexistent")) / GEMINI_SIGN_IN).is_file():
            return True, "signed in (with Google)"
        return False, "not signed in: set GEMINI_API_KEY, or run `gemini` once and sign in"
    argv = (
        [str(cli.path), "auth", "status", "--json"]
        if cli.kind == "claude"
        else [str(cli.path), "login", "status"]
    )
    try:
        run = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{' '.join(argv)}` failed: {exc}"
    if cli.kind == "claude":
        try:
            said = json.loads(run.stdout)
        except ValueError:
            said = {}
        if run.returncode == 0 and isinstance(said, dict) and said.get("loggedIn"):
            return True, f"signed in ({said.get('authMethod', 'unknown method')})"
        return False, "not signed in: run `claude` once and log in, or set ANTHROPIC_API_KEY"
    if run.returncode == 0:
        return True, "signed in"
    return False, "not signed in: run `codex login` (or `codex login --with-api-key`)"
