"""Worker kinds, their command lines and the configuration the autopilot gives them (pure).

A provider in the providers file may name the CLI that works its tasks (`worker:`):
`claude` (Claude Code headless), `codex` (`codex exec`) or `command` (any CLI, from an argv
template). Every run is configured by the autopilot alone: the CLI reads its settings, its
MCP server (wvo-mcp over HTTP with the run's own token) and its instructions from files the
autopilot writes in the run's private home, never from the repository it works in. Secrets
(the run token, the lease token in the prompt) reach it through its environment, stdin or
those files, never its argv (which any local user can read in /proc)."""

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from wvo_mcp.sandbox.limits import WorkerLimits

Kind = Literal["claude", "codex", "command"]
MCP_NAME = "wvo"  # the server's name in the worker's MCP config: tools are mcp__wvo__*
TOKEN_ENV = "WVO_MCP_TOKEN"  # the run token, for CLIs that read it from the environment
# What a `command` template may use; anything else in braces is refused when the file loads.
# The prompt carries the lease token: it goes to stdin and to {prompt_file}, never argv.
PLACEHOLDERS = ("prompt_file", "model", "workdir", "mcp_config", "mcp_url", "agent_id", "task_id")
# Claude Code edits files without asking (acceptEdits) and may use only these tools; it
# refuses bypassPermissions when run as root, and a prompt would hang a headless run.
CLAUDE_ALLOWED_TOOLS = ("mcp__wvo", "Read", "Edit", "Write", "Glob", "Grep", "Bash")
# Where the autopilot's files for a run live under the run's home.
FILES = PurePosixPath(".wvo")
# What each kind's CLI may read of the autopilot's environment besides what the providers
# file names (`worker.env`): its own provider's credentials and switches, never another
# provider's key, never wvo-mcp's own variables.
ENV_PASSED: dict[Kind, re.Pattern[str]] = {
    "claude": re.compile(r"^(ANTHROPIC_[A-Z0-9_]+|CLAUDE_CODE_[A-Z0-9_]+|DISABLE_[A-Z0-9_]+)$"),
    "codex": re.compile(r"^(OPENAI_[A-Z0-9_]+|CODEX_API_KEY)$"),
    "command": re.compile(r"^$"),
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
}
BASE_URL_ENV: dict[Kind, str] = {"claude": "ANTHROPIC_BASE_URL", "codex": "OPENAI_BASE_URL"}


@dataclass(frozen=True)
class WorkerKind:
    """How one provider's tasks are worked: which CLI, how many at once, what to add."""

    kind: Kind
    max_workers: int = 1
    executable: str = ""  # "" : the kind's own name on PATH
    extra_args: tuple[str, ...] = ()
    template: tuple[str, ...] = ()  # kind "command" only
    allowed_tools: tuple[str, ...] = CLAUDE_ALLOWED_TOOLS  # kind "claude" only
    hang_seconds: float = 600.0  # no output and no heartbeat for this long: killed
    env: tuple[str, ...] = ()  # more variable names passed from the autopilot's environment
    egress: tuple[str, ...] = ()  # more URLs (or host:port) the worker may reach
    mounts: tuple[str, ...] = ()  # more host folders it sees, read-only
    limits: WorkerLimits = field(default_factory=WorkerLimits)  # what each of its runs may use

    @property
    def program(self) -> str:
        """The CLI to run, as the providers file names it (a path, or a name on PATH)."""
        if self.executable:
            return self.executable
        return self.template[0] if self.kind == "command" and self.template else self.kind


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


def template_problems(template: Sequence[str]) -> list[str]:
    """What is wrong with a `command` template: unknown or malformed placeholders."""
    problems = []
    for part in template:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(part) if name is not None]
        except ValueError as exc:
            problems.append(f"{part!r}: {exc}")
            continue
        if "prompt" in names:
            problems.append(
                f"{part!r} uses {{prompt}}: the prompt carries the task's lease token, and a "
                "command line is readable by every local user; use {prompt_file} (or read "
                "the prompt from stdin)"
            )
        unknown = [name for name in names if name not in (*PLACEHOLDERS, "prompt")]
        if unknown:
            problems.append(
                f"{part!r} uses {', '.join('{' + n + '}' for n in unknown)}; "
                f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}"
            )
    return problems


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


def codex_config_toml(launch: Launch) -> str:
    """`$CODEX_HOME/config.toml`: wvo-mcp over HTTP (the token from the environment), no
    AGENTS.md (the prompt carries the base commit's), the worker's folder untrusted so a
    `.codex/config.toml` in it is never read."""
    return "\n".join(
        [
            "project_doc_max_bytes = 0",
            f"[projects.{json.dumps(str(launch.workdir))}]",
            'trust_level = "untrusted"',
            # Codex lists the repository's skills (.codex/skills, .agents/skills) to the model
            # as instructions even in an untrusted folder: a worker could plant them.
            "[skills]",
            "include_instructions = false",
            f"[mcp_servers.{MCP_NAME}]",
            f"url = {json.dumps(launch.mcp_url)}",
            f"bearer_token_env_var = {json.dumps(TOKEN_ENV)}",
            "required = true",
            "startup_timeout_sec = 30",
            "",
        ]
    )


def files(kind: WorkerKind, launch: Launch, token: str, prompt: str) -> dict[PurePosixPath, str]:
    """What the autopilot writes in the run's home before it starts (paths relative to it)."""
    written = {
        FILES / "prompt.md": prompt,
        FILES / "mcp.json": mcp_config_json(launch, token),
        PurePosixPath(".gitconfig"): "[user]\n\tname = "
        + launch.agent_id.replace("\n", " ")
        + "\n\temail = worker@wvo-mcp.invalid\n",
    }
    if kind.kind == "claude":
        written[FILES / "settings.json"] = claude_settings_json()
        written[PurePosixPath(".claude/settings.json")] = claude_settings_json()
    if kind.kind == "codex":
        written[PurePosixPath(".codex/config.toml")] = codex_config_toml(launch)
    return written


def environment(
    kind: WorkerKind, launch: Launch, token: str, outside: Mapping[str, str]
) -> dict[str, str]:
    """The CLI's whole environment: its own provider's variables from `outside` (the
    autopilot's), those the providers file names, and what the run needs."""
    passed = {
        name: value
        for name, value in outside.items()
        if ENV_PASSED[kind.kind].match(name) or name in kind.env
    }
    env = {
        **passed,
        "HOME": str(launch.home),
        "LANG": outside.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
        TOKEN_ENV: token,
    }
    if kind.kind == "claude":
        env |= CLAUDE_ENV
    if kind.kind == "codex":
        env["CODEX_HOME"] = str(launch.home / ".codex")
    return env


def model_apis(kind: WorkerKind, outside: Mapping[str, str]) -> list[str]:
    """The model API URLs this kind's CLI calls: its base URL variable when set, else the
    provider's public API; and whatever the providers file adds (`worker.egress`)."""
    name = BASE_URL_ENV.get(kind.kind)
    found = [outside[name]] if name is not None and outside.get(name) else []
    return [*(found or DEFAULT_API[kind.kind]), *kind.egress]


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
