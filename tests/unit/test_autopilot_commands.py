"""Worker command lines: each CLI's documented flags, the MCP config it is given, and a
`command` template filled in without a shell."""

import json
import tomllib
from pathlib import Path

from wvo_mcp.autopilot.commands import (
    Launch,
    Server,
    WorkerKind,
    argv,
    mcp_config_json,
    template_problems,
)

LAUNCH = Launch(
    agent_id="claude-w1",
    task_id="E1.T3",
    model="claude-sonnet-4-5",
    prompt="Work on E1.T3; it's yours: lease token abc",
    workdir=Path("/work/project/state/worktrees/E1.T3"),
    mcp_config=Path("/work/project/state/runs/E1.T3/1.mcp.json"),
    server=Server(
        command="/opt/wvo/bin/wvo-mcp",
        args=("serve",),
        env={"WVO_AGENT_ID": "claude-w1", "WVO_TOOLS": "worker"},
    ),
)


def test_claude_runs_headless_with_its_own_mcp_config_and_an_allow_list() -> None:
    line = argv(WorkerKind(kind="claude", extra_args=("--max-turns", "40")), LAUNCH)
    assert line[:3] == ["claude", "-p", LAUNCH.prompt]
    assert line[line.index("--output-format") + 1] == "stream-json" and "--verbose" in line
    assert line[line.index("--model") + 1] == "claude-sonnet-4-5"
    assert line[line.index("--mcp-config") + 1] == str(LAUNCH.mcp_config)
    assert "--strict-mcp-config" in line
    assert line[line.index("--permission-mode") + 1] == "acceptEdits"
    assert "mcp__wvo" in line[line.index("--allowedTools") + 1].split(",")
    assert line[-2:] == ["--max-turns", "40"]  # extra flags come last


def test_the_mcp_config_names_the_server_with_the_workers_identity() -> None:
    config = json.loads(mcp_config_json(LAUNCH))
    server = config["mcpServers"]["wvo"]
    assert server["command"] == "/opt/wvo/bin/wvo-mcp" and server["args"] == ["serve"]
    assert server["env"] == {"WVO_AGENT_ID": "claude-w1", "WVO_TOOLS": "worker"}


def test_codex_gets_the_server_as_toml_overrides_and_the_prompt_last() -> None:
    line = argv(WorkerKind(kind="codex", executable="/usr/local/bin/codex"), LAUNCH)
    assert line[:3] == ["/usr/local/bin/codex", "exec", "--json"]
    assert line[line.index("--cd") + 1] == str(LAUNCH.workdir)
    assert line[-1] == LAUNCH.prompt
    overrides = [line[i + 1] for i, part in enumerate(line) if part == "-c"]
    parsed = tomllib.loads("\n".join(overrides))
    assert parsed["approval_policy"] == "never"
    assert parsed["mcp_servers"]["wvo"] == {
        "command": "/opt/wvo/bin/wvo-mcp",
        "args": ["serve"],
        "env": {"WVO_AGENT_ID": "claude-w1", "WVO_TOOLS": "worker"},
        "required": True,
        "startup_timeout_sec": 30,
    }
    assert line[line.index("--sandbox") + 1] == "workspace-write"
    # Given the git directories, its sandbox lets it commit in a worktree.
    dirs = (Path("/repo/.git"), Path("/repo/.git/worktrees/E1.T3"))
    kind = WorkerKind(kind="codex")
    with_dirs = argv(kind, Launch(**{**LAUNCH.__dict__, "git_dirs": dirs}))
    roots = [with_dirs[i + 1] for i, part in enumerate(with_dirs) if part == "-c"]
    parsed_roots = tomllib.loads("\n".join(roots))["sandbox_workspace_write"]["writable_roots"]
    assert parsed_roots == ["/repo/.git", "/repo/.git/worktrees/E1.T3"]


def test_a_command_template_is_filled_in_argument_by_argument() -> None:
    kind = WorkerKind(kind="command", template=("agent", "--model={model}", "{prompt}"))
    line = argv(kind, LAUNCH)
    # The prompt stays one argument whatever it holds: there is no shell.
    assert line == ["agent", "--model=claude-sonnet-4-5", LAUNCH.prompt]


def test_template_problems_name_unknown_and_malformed_placeholders() -> None:
    assert template_problems(["a", "{prompt}", "{model}-{task_id}"]) == []
    [unknown] = template_problems(["{home}"])
    assert "{home}" in unknown and "{prompt}" in unknown
    [broken] = template_problems(["{prompt"])
    assert "{prompt" in broken
