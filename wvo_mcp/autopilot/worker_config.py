"""A worker's command line (argv), environment and configuration files, per CLI kind (pure).

A provider in the providers file may name the CLI that works its tasks (`worker:`, a
WorkerKind: providers.py, which reads the file, owns the kinds):
`claude` (Claude Code headless), `codex` (`codex exec`) or `command` (any CLI, from an argv
template). Every run is configured by the autopilot alone: the CLI reads its settings, its
MCP server (wvo-mcp over HTTP with the run's own token) and its instructions from files the
autopilot writes in the run's private home, never from the repository it works in. Secrets
(the run token, the lease token in the prompt) reach it through its environment, stdin or
those files, never its argv (which any local user can read in /proc).

Carries out `rules/acp_agents.py`."""

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wvo_mcp.autopilot import orphans
from wvo_mcp.providers import Kind, WorkerKind
from wvo_mcp.rules import acp_agents, wire

MCP_NAME = "wvo"  # the server's name in the worker's MCP config: tools are mcp__wvo__*
TOKEN_ENV = "WVO_MCP_TOKEN"  # the run token, for CLIs that read it from the environment
# Where the autopilot's files for a run live under the run's home.
FILES = PurePosixPath(".wvo")
# What each kind's CLI may read of the autopilot's environment besides what the providers
# file names (`worker.env`): its own provider's credentials and switches, never another
# provider's key, never wvo-mcp's own variables.
ENV_PASSED: dict[Kind, re.Pattern[str]] = {
    "claude": re.compile(r"^(ANTHROPIC_[A-Z0-9_]+|CLAUDE_CODE_[A-Z0-9_]+|DISABLE_[A-Z0-9_]+)$"),
    "codex": re.compile(r"^(OPENAI_[A-Z0-9_]+|CODEX_API_KEY)$"),
    "command": re.compile(r"^$"),
    "acp": re.compile(r"^$"),  # its agent's own: acp_agents.passes
}
# What every run gets, whatever its environment says.
CLAUDE_ENV = {
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",  # instructions come from the prompt (base commit)
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
}
# Where each kind's model API is when its environment names none.
DEFAULT_API: dict[Kind, tuple[str, ...]] = {
    "claude": ("https://api.anthropic.com",),
    "codex": ("https://api.openai.com", "https://chatgpt.com"),
    "command": (),
    "acp": (),  # its agent's own: acp_agents.Agent.default_api
}
# The model API each native kind's traffic is metered on (sandbox/meter.py, rules/wire.py);
# rules/acp_agents.APIS says where it is and the variable that moves it.
NATIVE_API: dict[Kind, wire.Api] = {"claude": "anthropic", "codex": "openai"}
DRIVER = "wvo_mcp.autopilot.acp_driver"  # an ACP worker's command: it drives the agent


@dataclass(frozen=True)
class Launch:
    """One worker run, with every path as the CLI sees it (inside its sandbox, if any)."""

    agent_id: str
    task_id: str
    model: str
    workdir: Path  # its own repository
    home: Path  # its private home: the autopilot's files are under home/.wvo
    mcp_url: str  # wvo-mcp over HTTP; the run token is in mcp.json and TOKEN_ENV
    sandboxed: bool = True  # inside wvo-mcp's sandbox (Codex then needs none of its own)
    mark: str = ""  # on every process of the run (orphans.MARK)

    @property
    def files(self) -> Path:
        return self.home / FILES

    @property
    def mcp_config(self) -> Path:
        return self.files / "mcp.json"

    @property
    def settings(self) -> Path:
        return self.files / "settings.json"

    @property
    def prompt_file(self) -> Path:
        return self.files / "prompt.md"

    @property
    def acp_config(self) -> Path:
        return self.files / "acp.json"


def mcp_config_json(launch: Launch, token: str) -> str:
    """Claude Code's `--mcp-config` file (the `command` kind's {mcp_config}): wvo-mcp over
    HTTP with the run's token. The file is private to the run (0600)."""
    server = {
        "type": "http",
        "url": launch.mcp_url,
        "headers": {"Authorization": f"Bearer {token}"},
    }
    return json.dumps({"mcpServers": {MCP_NAME: server}}, indent=2)


def claude_settings_json() -> str:
    """The only settings Claude Code loads (`--setting-sources user` with the run's home, and
    `--settings`): no hooks, no project MCP servers, whatever the repository holds."""
    return json.dumps(
        {
            "disableAllHooks": True,
            "enableAllProjectMcpServers": False,
            "includeCoAuthoredBy": False,
        },
        indent=2,
    )


def codex_config_toml(launch: Launch, mcp: bool = True) -> str:
    """`$CODEX_HOME/config.toml`: wvo-mcp over HTTP (the token from the environment; not
    for Codex's ACP adapter, whose session names it), no AGENTS.md (the prompt carries the
    base commit's), the worker's folder untrusted so a `.codex/config.toml` in it is never
    read."""
    server = [
        f"[mcp_servers.{MCP_NAME}]",
        f"url = {json.dumps(launch.mcp_url)}",
        f"bearer_token_env_var = {json.dumps(TOKEN_ENV)}",
        "required = true",
        "startup_timeout_sec = 30",
    ]
    return "\n".join(
        [
            "project_doc_max_bytes = 0",
            # The API's own search adds input no request holds, which a cut answer's meter
            # could bound only by a context window (rules/wire.py); no task needs it.
            'web_search = "disabled"',
            f"[projects.{json.dumps(str(launch.workdir))}]",
            'trust_level = "untrusted"',
            # Codex lists the repository's skills (.codex/skills, .agents/skills) to the model
            # as instructions even in an untrusted folder: a worker could plant them.
            "[skills]",
            "include_instructions = false",
            *(server if mcp else []),
            "",
        ]
    )


def acp_json(kind: WorkerKind, launch: Launch, program: str) -> str:
    """An ACP worker's driver configuration (acp_driver.Config): its agent's command line,
    its repository, wvo-mcp's endpoint (the token is in its environment) and the policy its
    permission requests are answered by."""
    preset = acp_agents.agent(kind.agent, kind.api)
    own = codex_acp_sandbox(launch) if preset.wraps == "codex" else []
    args = (a.format(model=launch.model) for a in preset.args)
    command = [program, *args, *own, *kind.extra_args]
    return json.dumps(
        {
            "agent": command,
            "cwd": str(launch.workdir),
            "mcp_url": launch.mcp_url,
            "mcp_name": MCP_NAME,
            "permissions": kind.permissions,
            "session_meta": dict(preset.session_meta),
            "poll_seconds": kind.poll_seconds,
        },
        indent=2,
    )


def codex_acp_sandbox(launch: Launch) -> list[str]:
    """Codex's own sandbox under its ACP adapter, as `codex exec`'s (argv): off inside
    wvo-mcp's, where its `workspace-write` would keep `.git` read-only and refuse every
    commit; outside, on with `.git` writable. Its approvals stay, each a permission request
    the providers file's `permissions` answers."""
    if launch.sandboxed:
        return ["-c", 'sandbox_mode="danger-full-access"']
    roots = json.dumps([str(launch.workdir / ".git")])
    return ["-c", 'sandbox_mode="workspace-write"',
            "-c", f"sandbox_workspace_write.writable_roots={roots}"]  # fmt: skip


def opencode_json(kind: WorkerKind, launch: Launch) -> str:
    """OpenCode's settings in the run's home: the tier's model, for its titles too, and no
    sharing or updates. Its meter comes in OPENCODE_CONFIG_CONTENT (through_meter)."""
    preset = acp_agents.agent(kind.agent, kind.api)
    provider = acp_agents.OPENCODE[preset.api or "anthropic"][0]
    model = f"{provider}/{launch.model}"
    return json.dumps(
        {
            "model": model,
            "small_model": model,
            "autoupdate": False,
            "share": "disabled",
            # Known to it even where its bundled catalog is older than the model.
            "provider": {provider: {"models": {launch.model: {}}}},
        },
        indent=2,
    )


def files(
    kind: WorkerKind, launch: Launch, token: str, prompt: str, program: str = ""
) -> dict[PurePosixPath, str]:
    """What the autopilot writes in the run's home before it starts (paths relative to it);
    `program` is the CLI's resolved path."""
    written = {
        FILES / "prompt.md": prompt,
        FILES / "mcp.json": mcp_config_json(launch, token),
        PurePosixPath(".gitconfig"): "[user]\n\tname = "
        + launch.agent_id.replace("\n", " ")
        + "\n\temail = worker@wvo-mcp.invalid\n",
    }
    cli = configured_as(kind)
    if cli == "claude":
        written[FILES / "settings.json"] = claude_settings_json()
        written[PurePosixPath(".claude/settings.json")] = claude_settings_json()
    if cli == "codex":  # an ACP session names wvo-mcp itself
        written[PurePosixPath(".codex/config.toml")] = codex_config_toml(
            launch, mcp=kind.kind == "codex"
        )
    if kind.kind == "acp":
        written[FILES / "acp.json"] = acp_json(kind, launch, program)
        if acp_agents.AGENTS[kind.agent].config:
            written[PurePosixPath(acp_agents.AGENTS[kind.agent].config)] = opencode_json(
                kind, launch
            )
    return written


def configured_as(kind: WorkerKind) -> Kind:
    """The kind whose run configuration a kind's run gets (its home's files, variables and
    login): an ACP adapter's, the CLI it wraps."""
    wraps = acp_agents.AGENTS[kind.agent].wraps if kind.kind == "acp" else ""
    return wraps or kind.kind


def environment(
    kind: WorkerKind, launch: Launch, token: str, outside: Mapping[str, str]
) -> dict[str, str]:
    """The CLI's whole environment: its own provider's variables from `outside` (the
    autopilot's), those the providers file names, and what the run needs."""
    passed = {name: value for name, value in outside.items() if _passes(kind, name)}
    env = {
        **passed,
        "HOME": str(launch.home),
        "LANG": outside.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
        TOKEN_ENV: token,
    }
    if launch.mark:  # what ends the run's processes, or a later autopilot if this one dies
        env[orphans.MARK] = launch.mark
    if configured_as(kind) == "claude":
        env |= CLAUDE_ENV
    if configured_as(kind) == "codex":
        env["CODEX_HOME"] = str(launch.home / ".codex")
    if kind.kind == "acp":
        preset = acp_agents.AGENTS[kind.agent]
        env |= dict(preset.sets)
        if preset.model_env:
            env[preset.model_env] = launch.model
    return env


def _passes(kind: WorkerKind, name: str) -> bool:
    """Whether the CLI of `kind` may read the autopilot's variable `name`."""
    if name in kind.env or ENV_PASSED[kind.kind].match(name):
        return True
    return kind.kind == "acp" and acp_agents.passes(acp_agents.agent(kind.agent, kind.api), name)


def _base_url_env(kind: WorkerKind) -> str:
    if kind.kind == "acp":
        return acp_agents.agent(kind.agent, kind.api).base_url_env
    native = NATIVE_API.get(kind.kind)
    return acp_agents.APIS[native][0] if native is not None else ""


CEILING_SAID = "or, where it says nothing (killed, stopped), the ceiling of one request"
UNMETERED_CODEX = (
    "Codex signed in with ChatGPT talks to ChatGPT's own service, which no base URL moves: "
    f"it is charged its own word, {CEILING_SAID} (give it an API key, OPENAI_API_KEY, to have "
    "it metered)"
)


def names_api(kind: WorkerKind) -> bool:
    """Whether a kind's CLI calls a model API the autopilot knows: metered where a meter can
    stand in front of it, else charged its CLI's word or, without one, the ceiling."""
    if kind.kind == "acp":
        return acp_agents.agent(kind.agent, kind.api).api is not None
    return kind.kind in NATIVE_API


def unmetered_acp(kind: WorkerKind) -> str:
    """Why an ACP worker's model traffic cannot go through its run's meter."""
    preset = acp_agents.agent(kind.agent, kind.api)
    if preset.api is None:
        return (
            f"agent {kind.agent} names no model API (`api:` anthropic, openai or gemini), so "
            "it is charged only what it says it used"
        )
    keys = " or ".join(preset.key_env)
    return (
        f"agent {kind.agent} is signed in to its vendor's own service: it is charged its own "
        f"word, {CEILING_SAID} (give it {keys} to have it metered)"
    )


def metered(
    kind: WorkerKind, outside: Mapping[str, str], api_key_file: bool = False
) -> tuple[wire.Api, str] | None:
    """The wire format and the real base URL of a kind's model API, when its traffic can go
    through its run's meter: Claude Code always; Codex with an API key (in its environment,
    or `api_key_file`: the person's auth.json holds one), not signed in with ChatGPT."""
    keys: tuple[str, ...] = ("OPENAI_API_KEY", "CODEX_API_KEY") if kind.kind == "codex" else ()
    if kind.kind == "acp":
        preset = acp_agents.agent(kind.agent, kind.api)
        found = (preset.api, preset.default_api) if preset.api is not None else None
        keys = preset.key_env
    else:
        native = NATIVE_API.get(kind.kind)
        found = (native, acp_agents.APIS[native][1]) if native is not None else None
    if found is None:
        return None
    login = api_key_file and configured_as(kind) == "codex"  # Codex's auth.json, its own
    if keys and not (login or any(outside.get(k) for k in keys)):
        return None
    api, default = found
    return api, (outside.get(_base_url_env(kind)) or default).rstrip("/")


METER_PROVIDER = "wvo-meter"  # the Codex model provider the autopilot gives a metered run
# A variable a CLI may take a model API's address from (OPENAI_BASE_URL, OPENAI_API_BASE,
# ANTHROPIC_VERTEX_BASE_URL, …): where a meter stands, only the meter's is left.
API_ADDRESS = re.compile(r"^[A-Z0-9_]*(BASE_URL|API_BASE|API_URL|ENDPOINT)$")


def through_meter(kind: WorkerKind, argv: list[str], env: dict[str, str], inside: str) -> None:
    """A run's CLI pointed at its meter (`inside`, with the real API's path): Claude Code
    by its base URL variable; Codex, whose built-in OpenAI provider takes no base URL, by a
    provider of the autopilot's own, set last on its command line so it wins over any the
    providers file's `extra_args` name. Its key: OPENAI_API_KEY or CODEX_API_KEY from its
    environment, else its API-key login. Codex's ACP adapter alike, through its driver.
    OpenCode, whose settings name its model API's URL, by settings merged over its own.
    Every other variable naming an API's address goes (API_ADDRESS): the real API's, which
    its CLI no longer calls, is not shown to it."""
    for name in [n for n in env if API_ADDRESS.match(n)]:
        del env[name]
    if kind.kind == "acp" and acp_agents.AGENTS[kind.agent].config:
        preset = acp_agents.agent(kind.agent, kind.api)
        provider, path = acp_agents.OPENCODE[preset.api or "anthropic"]
        meter = {"provider": {provider: {"options": {"baseURL": inside + path}}}}
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(meter)
    elif configured_as(kind) != "codex":
        env[_base_url_env(kind)] = inside
    elif kind.kind == "acp":  # to its driver, which starts the agent with them: after `--`
        argv += ["--", *_meter_provider(env, inside)]
    else:
        end = len(argv) - 1 if argv and argv[-1] == "-" else len(argv)  # before its "-"
        argv[end:end] = _meter_provider(env, inside)


def _meter_provider(env: Mapping[str, str], inside: str) -> list[str]:
    """Codex's settings for a model provider of the autopilot's own at `inside`."""
    key = next((k for k in ("OPENAI_API_KEY", "CODEX_API_KEY") if env.get(k)), None)
    auth = f'env_key="{key}"' if key else "requires_openai_auth=true"
    at = f"model_providers.{METER_PROVIDER}"
    settings = [f'model_provider="{METER_PROVIDER}"', f'{at}.name="OpenAI, metered"',
                f"{at}.base_url={json.dumps(inside)}", f'{at}.wire_api="responses"',
                f"{at}.{auth}"]  # fmt: skip
    return [part for setting in settings for part in ("-c", setting)]


def model_apis(kind: WorkerKind, outside: Mapping[str, str]) -> list[str]:
    """The model API URLs this kind's CLI calls: its base URL variable when set, else the
    provider's public API; and whatever the providers file adds (`worker.egress`)."""
    name = _base_url_env(kind)
    found = [outside[name]] if name and outside.get(name) else []
    if kind.kind == "acp":
        preset = acp_agents.agent(kind.agent, kind.api)
        default: tuple[str, ...] = (preset.default_api,) if preset.default_api else ()
    else:
        default = DEFAULT_API[kind.kind]
    return [*(found or default), *kind.egress]


def argv(kind: WorkerKind, launch: Launch, program: str) -> list[str]:
    """The worker's command line (the prompt comes on stdin); `program` is the CLI's
    resolved path. It runs with its repository as its working directory."""
    if kind.kind == "claude":
        return [
            program,
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            launch.model,
            "--setting-sources",
            "user",
            "--settings",
            str(launch.settings),
            "--mcp-config",
            str(launch.mcp_config),
            "--strict-mcp-config",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            ",".join(kind.allowed_tools),
            *kind.extra_args,
        ]
    if kind.kind == "acp":  # the driver starts the agent (acp.json)
        return [sys.executable, "-P", "-m", DRIVER, str(launch.acp_config)]
    if kind.kind == "codex":
        if launch.sandboxed:
            # wvo-mcp's sandbox is the boundary; Codex's own would nest bwrap in bwrap.
            sandbox = ["--sandbox", "danger-full-access"]
        else:
            # Its sandbox makes git metadata read-only: commits need .git writable.
            roots = json.dumps([str(launch.workdir / ".git")])
            sandbox = [
                "--sandbox",
                "workspace-write",
                "-c",
                f"sandbox_workspace_write.writable_roots={roots}",
            ]
        # exec never asks for approvals; said anyway, as Codex's own SDK does.
        return [
            program,
            "exec",
            "--json",
            "--ephemeral",
            "--skip-git-repo-check",
            "--cd",
            str(launch.workdir),
            "--model",
            launch.model,
            *sandbox,
            "-c",
            'approval_policy="never"',
            *kind.extra_args,
            "-",  # the prompt, from stdin
        ]
    values = {
        "prompt_file": str(launch.prompt_file),
        "model": launch.model,
        "workdir": str(launch.workdir),
        "mcp_config": str(launch.mcp_config),
        "mcp_url": launch.mcp_url,
        "agent_id": launch.agent_id,
        "task_id": launch.task_id,
    }
    template = [program, *kind.template[1:]] if kind.template else [program]
    return [part.format(**values) for part in template] + list(kind.extra_args)
