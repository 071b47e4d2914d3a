"""The coding agents an ACP worker drives: how each starts, which model API it calls (pure).

The coding agents an `acp` worker drives (pure): how each is started to speak the Agent
Client Protocol, which model API it calls and how that call is pointed at the run's meter.

A providers file names one as `worker: {kind: acp, agent: NAME}`; `custom` is any other ACP
agent, given by `executable` and `extra_args`, with its model API as `api` (none: not
metered, its usage unknown). autopilot/worker_config.py acts on these (its command line, its
environment, its meter), and autopilot/acp_driver.py drives the agent so started.

Carried out by `wvo_mcp/autopilot/worker_config.py` and `wvo_mcp/autopilot/dispatch.py`.
"""

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from wvo_mcp.rules import wire

# How often an ACP worker's driver reads its task for a person's words, a pause or a drain
# (a worker's `poll_seconds` in the providers file), and what it may be, both accepted: the
# providers file is held to the range, and so is the driver's own reading of it.
POLL_SECONDS = 5.0
POLL_SECONDS_RANGE = (0.1, 600.0)


@dataclass(frozen=True)
class Agent:
    program: str  # its CLI, found on PATH unless `executable` says otherwise
    args: tuple[str, ...]  # to speak ACP on stdio; {model} is the tier's model
    api: wire.Api | None  # the wire format of its model API (APIS: where it is, how it moves)
    env: str  # a pattern of the variables it may read of the autopilot's environment
    model_env: str = ""  # the variable it takes its model from, where not an argument
    # Metered only with one of these set (an API key): without, it signs in to its vendor's
    # own service, which no base URL moves.
    key_env: tuple[str, ...] = ()
    # Sent with session/new as its `_meta`: the agent's own options for the session.
    session_meta: tuple[tuple[str, object], ...] = ()
    # Whether it may review another's submission: it is known to take no configuration from
    # the checkout it works in (tests/security/test_acp_planted_config.py). Gemini CLI still
    # runs a repository's tool discovery command; OpenCode imports its .opencode plugins;
    # any other is unverified.
    reviews: bool = False
    # The autopilot's own CLI kind it wraps (Zed's adapters of Claude Code and Codex): it
    # gets that kind's run home, fixed variables and way to its meter (worker_config.py).
    wraps: Literal["", "claude", "codex"] = ""
    # Variables it is always given.
    sets: tuple[tuple[str, str], ...] = ()
    # Where under its run home the autopilot writes its settings (OpenCode's, which carry
    # its model: worker_config.opencode_json); its meter is then merged in by a variable.
    config: str = ""

    @property
    def base_url_env(self) -> str:
        """The variable that moves its model API (to the run's meter); "" with none."""
        return APIS[self.api][0] if self.api is not None else ""

    @property
    def default_api(self) -> str:
        """Where its model API is when the environment names none; "" with none."""
        return APIS[self.api][1] if self.api is not None else ""


# Each model API: the variable most agents take its base URL from, where it is, and the
# variable its key is in.
APIS: dict[wire.Api, tuple[str, str, str]] = {
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "gemini": ("GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com",
               "GEMINI_API_KEY"),
}  # fmt: skip
# OpenCode's name for each model API's provider, and the path its client adds to the API's
# base URL (the AI SDK's defaults: https://api.anthropic.com/v1, …/v1beta for Gemini).
OPENCODE: dict[wire.Api, tuple[str, str]] = {
    "anthropic": ("anthropic", "/v1"),
    "openai": ("openai", ""),
    "gemini": ("google", "/v1beta"),
}
AGENTS: dict[str, Agent] = {
    "gemini": Agent(
        # Only wvo-mcp among MCP servers, whatever the repository's settings name.
        "gemini", ("--experimental-acp", "--model", "{model}", "--allowed-mcp-server-names",
                   "wvo"), "gemini",
        # Signed in with Google it talks to Code Assist, which no base URL moves.
        r"GEMINI_[A-Z0-9_]+|GOOGLE_[A-Z0-9_]+", key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        # Untrusted, it connects to no MCP server, wvo-mcp's included. Trusted, it takes the
        # repository's .gemini settings, which its system settings do not override: its MCP
        # servers are held to wvo-mcp by its command line, its hooks and tool discovery
        # command are not, so it never reviews another's checkout (docs/autopilot.md).
        sets=(("GEMINI_CLI_TRUST_WORKSPACE", "true"),),
    ),
    "claude-acp": Agent(
        "claude-code-acp", (), "anthropic", r"ANTHROPIC_[A-Z0-9_]+|CLAUDE_CODE_[A-Z0-9_]+",
        model_env="ANTHROPIC_MODEL",
        # The adapter loads user, project and local settings unless told: only the user's,
        # the run home's that the autopilot writes (no hooks), never the repository's.
        session_meta=(("claudeCode", {"options": {"settingSources": ["user"]}}),),
        reviews=True, wraps="claude",
    ),
    "codex-acp": Agent(
        # Its own sandbox is set by the run (worker_config.codex_acp_sandbox): off inside wvo-mcp's.
        "codex-acp", ("-c", 'model="{model}"'), "openai", r"OPENAI_[A-Z0-9_]+|CODEX_API_KEY",
        key_env=("OPENAI_API_KEY", "CODEX_API_KEY"), reviews=True,
        wraps="codex",
    ),
    "opencode": Agent(
        # --pure: no plugins but its own.
        "opencode", ("acp", "--pure"), "anthropic", r"OPENCODE_[A-Z0-9_]+",
        key_env=("ANTHROPIC_API_KEY",), config=".config/opencode/opencode.json",
        # Its settings are the run home's: none of the repository's (opencode.json,
        # .opencode/), no CLAUDE.md or Claude skills, no catalog or updates fetched.
        sets=(("OPENCODE_DISABLE_PROJECT_CONFIG", "1"), ("OPENCODE_DISABLE_CLAUDE_CODE", "1"),
              ("OPENCODE_DISABLE_EXTERNAL_SKILLS", "1"), ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
              ("OPENCODE_DISABLE_MODELS_FETCH", "1"), ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
              ("OPENCODE_DISABLE_SHARE", "1")),
    ),
    "custom": Agent("", (), None, r"$^"),
}  # fmt: skip


def agent(name: str, api: wire.Api | None = None) -> Agent:
    """The preset `name`, its model API as the providers file gives it when it does (an
    agent that needs a key needs that API's)."""
    found = AGENTS[name]
    if api is None or api == found.api:
        return found
    keys = (APIS[api][2],) if found.key_env else ()
    return dataclasses.replace(found, api=api, key_env=keys)


def passes(preset: Agent, name: str) -> bool:
    """Whether its CLI may read the autopilot's variable `name`."""
    return re.fullmatch(preset.env, name) is not None or name in preset.key_env
