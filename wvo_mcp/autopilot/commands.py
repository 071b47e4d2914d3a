"""Worker kinds and their command lines (pure).

A provider in the providers file may name the CLI that works its tasks (`worker:`):
`claude` (Claude Code headless), `codex` (`codex exec`) or `command` (any CLI, from an argv
template). Each launch gets its own MCP config pointing at wvo-mcp with the worker's
identity and the worker tool profile, the tier's model, and the task's worktree."""

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["claude", "codex", "command"]
MCP_NAME = "wvo"  # the server's name in the worker's MCP config: tools are mcp__wvo__*
# What a `command` template may use; anything else in braces is refused when the file loads.
PLACEHOLDERS = ("prompt", "model", "workdir", "mcp_config", "agent_id", "task_id")
# Claude Code edits files without asking (acceptEdits) and may use only these tools; it
# refuses bypassPermissions when run as root, and a prompt would hang a headless run.
CLAUDE_ALLOWED_TOOLS = ("mcp__wvo", "Read", "Edit", "Write", "Glob", "Grep", "Bash")


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

    @property
    def program(self) -> str:
        return self.executable or self.kind


@dataclass(frozen=True)
class Server:
    """How a worker's CLI starts its wvo-mcp server."""

    command: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """One worker run: a task, a model, a worktree and the server to reach."""

    agent_id: str
    task_id: str
    model: str
    prompt: str
    workdir: Path
    mcp_config: Path  # where mcp_config_json() is written, for CLIs that read a file
    server: Server
    git_dirs: tuple[Path, ...] = ()  # the repository's and the worktree's git directories


def template_problems(template: Sequence[str]) -> list[str]:
    """What is wrong with a `command` template: unknown or malformed placeholders."""
    problems = []
    for part in template:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(part) if name is not None]
        except ValueError as exc:
            problems.append(f"{part!r}: {exc}")
            continue
        unknown = [name for name in names if name not in PLACEHOLDERS]
        if unknown:
            problems.append(
                f"{part!r} uses {', '.join('{' + n + '}' for n in unknown)}; "
                f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}"
            )
    return problems


def mcp_config_json(launch: Launch) -> str:
    """The MCP config a worker's CLI reads (Claude Code's `--mcp-config` format)."""
    server = {
        "type": "stdio",
        "command": launch.server.command,
        "args": list(launch.server.args),
        "env": dict(launch.server.env),
    }
    return json.dumps({"mcpServers": {MCP_NAME: server}}, indent=2)


def argv(kind: WorkerKind, launch: Launch) -> list[str]:
    """The worker's command line; it runs with the worktree as its working directory."""
    if kind.kind == "claude":
        return [
            kind.program,
            "-p",
            launch.prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            launch.model,
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
        # exec never asks for approvals; said anyway, as Codex's own SDK does.
        return [
            kind.program,
            "exec",
            "--json",
            "--ephemeral",
            "--skip-git-repo-check",
            "--cd",
            str(launch.workdir),
            "--model",
            launch.model,
            "--sandbox",
            "workspace-write",
            "-c",
            'approval_policy="never"',
            # Its sandbox makes git metadata read-only, and a worktree's lives outside it
            # (objects and refs in the repository's .git): commits need both writable.
            *(
                ["-c", f"sandbox_workspace_write.writable_roots={_toml_paths(launch.git_dirs)}"]
                if launch.git_dirs
                else []
            ),
            *_codex_server(launch.server),
            *kind.extra_args,
            launch.prompt,
        ]
    values = {
        "prompt": launch.prompt,
        "model": launch.model,
        "workdir": str(launch.workdir),
        "mcp_config": str(launch.mcp_config),
        "agent_id": launch.agent_id,
        "task_id": launch.task_id,
    }
    return [part.format(**values) for part in kind.template] + list(kind.extra_args)


def _toml_paths(paths: Sequence[Path]) -> str:
    return json.dumps([str(path) for path in paths])


def _codex_server(server: Server) -> list[str]:
    """`-c` overrides declaring the MCP server (values are TOML: JSON strings and arrays of
    strings are valid TOML; the env table is written inline; Codex passes the server only
    this env plus a short allow-list such as PATH and HOME). `required`: a server that
    fails to start fails the run instead of being skipped."""
    prefix = f"mcp_servers.{MCP_NAME}"
    env = ", ".join(f"{key} = {json.dumps(value)}" for key, value in server.env.items())
    settings = {
        "command": json.dumps(server.command),
        "args": json.dumps(list(server.args)),
        "env": f"{{{env}}}",
        "required": "true",
        "startup_timeout_sec": "30",
    }
    return [part for key, value in settings.items() for part in ("-c", f"{prefix}.{key}={value}")]
