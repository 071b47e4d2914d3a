"""Worker command lines and configuration: each CLI's documented flags, the settings and MCP
config the autopilot writes for it, its environment, and a `command` template filled in
without a shell. No secret (the run token, the lease token in the prompt) is ever in argv."""

import json
import shutil
import tomllib
from pathlib import Path, PurePosixPath

from wvo_mcp.autopilot import isolation
from wvo_mcp.autopilot.worker_config import (
    TOKEN_ENV,
    Launch,
    argv,
    claude_settings_json,
    codex_config_toml,
    configured_as,
    environment,
    files,
    mcp_config_json,
    metered,
    model_apis,
    through_meter,
)
from wvo_mcp.providers import WorkerKind, template_problems

TOKEN = "wvo_run-token-secret"
PROMPT = "Work on E1.T3; it's yours: lease token abc"
LAUNCH = Launch(
    agent_id="claude-w1",
    task_id="E1.T3",
    model="claude-sonnet-4-5",
    workdir=Path("/work/project.wvo-worktrees/E1.T3/1"),
    home=Path("/home/worker"),
    mcp_url="http://127.0.0.1:40123/mcp",
)
OUTSIDE = {
    "PATH": "/usr/bin",
    "HOME": "/root",
    "ANTHROPIC_API_KEY": "sk-ant-person",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9999",
    "OPENAI_API_KEY": "sk-openai-person",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "WVO_DATABASE_URL": "postgresql://wvo:secret@db/wvo",
    "WVO_STATE_ROOT": "/srv/state",
    "STUB_KEY": "stub",
}


def test_claude_runs_headless_configured_by_the_autopilot_alone() -> None:
    line = argv(WorkerKind(kind="claude", extra_args=("--max-turns", "40")), LAUNCH, "/opt/claude")
    assert line[:2] == ["/opt/claude", "-p"]  # the prompt comes on stdin
    assert line[line.index("--output-format") + 1] == "stream-json" and "--verbose" in line
    assert line[line.index("--model") + 1] == "claude-sonnet-4-5"
    # Only the user settings of the run's private home, and the autopilot's own file.
    assert line[line.index("--setting-sources") + 1] == "user"
    assert line[line.index("--settings") + 1] == "/home/worker/.wvo/settings.json"
    assert line[line.index("--mcp-config") + 1] == "/home/worker/.wvo/mcp.json"
    assert "--strict-mcp-config" in line
    assert line[line.index("--permission-mode") + 1] == "acceptEdits"
    assert "mcp__wvo" in line[line.index("--allowedTools") + 1].split(",")
    assert line[-2:] == ["--max-turns", "40"]  # extra flags come last
    assert not any(PROMPT in part or TOKEN in part for part in line)


def test_the_settings_switch_off_hooks_and_project_servers() -> None:
    settings = json.loads(claude_settings_json())
    assert settings["disableAllHooks"] is True
    assert settings["enableAllProjectMcpServers"] is False


def test_the_mcp_config_is_wvo_over_http_with_the_run_token() -> None:
    server = json.loads(mcp_config_json(LAUNCH, TOKEN))["mcpServers"]["wvo"]
    assert server == {
        "type": "http",
        "url": "http://127.0.0.1:40123/mcp",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }


def test_codex_reads_its_config_from_the_run_home_and_the_prompt_from_stdin() -> None:
    line = argv(WorkerKind(kind="codex"), LAUNCH, "/usr/local/bin/codex")
    assert line[:3] == ["/usr/local/bin/codex", "exec", "--json"]
    assert line[line.index("--cd") + 1] == str(LAUNCH.workdir)
    assert line[-1] == "-"
    # In wvo-mcp's sandbox, Codex needs none of its own (bwrap does not nest).
    assert line[line.index("--sandbox") + 1] == "danger-full-access"
    overrides = [line[i + 1] for i, part in enumerate(line) if part == "-c"]
    assert tomllib.loads("\n".join(overrides)) == {"approval_policy": "never"}
    config = tomllib.loads(codex_config_toml(LAUNCH))
    assert config["project_doc_max_bytes"] == 0
    assert config["skills"] == {"include_instructions": False}  # a repository's skills too
    assert config["projects"][str(LAUNCH.workdir)] == {"trust_level": "untrusted"}
    assert config["mcp_servers"]["wvo"] == {
        "url": "http://127.0.0.1:40123/mcp",
        "bearer_token_env_var": TOKEN_ENV,
        "required": True,
        "startup_timeout_sec": 30,
    }


def test_unsandboxed_codex_keeps_its_own_sandbox_with_git_writable() -> None:
    unsandboxed = Launch(**{**LAUNCH.__dict__, "sandboxed": False})
    line = argv(WorkerKind(kind="codex"), unsandboxed, "codex")
    assert line[line.index("--sandbox") + 1] == "workspace-write"
    overrides = tomllib.loads("\n".join(line[i + 1] for i, p in enumerate(line) if p == "-c"))
    roots = overrides["sandbox_workspace_write"]["writable_roots"]
    assert roots == [str(LAUNCH.workdir / ".git")]


def test_each_kind_gets_its_own_providers_variables_and_nothing_of_wvo_mcp() -> None:
    claude = environment(WorkerKind(kind="claude"), LAUNCH, TOKEN, OUTSIDE)
    assert claude["ANTHROPIC_API_KEY"] == "sk-ant-person"
    assert claude["HOME"] == "/home/worker" and claude[TOKEN_ENV] == TOKEN
    assert claude["CLAUDE_CODE_DISABLE_CLAUDE_MDS"] == "1"
    assert not {"OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "PATH"} & set(claude)
    assert not any(name.startswith("WVO_") for name in claude if name != TOKEN_ENV)
    codex = environment(WorkerKind(kind="codex", env=("STUB_KEY",)), LAUNCH, TOKEN, OUTSIDE)
    assert codex["OPENAI_API_KEY"] == "sk-openai-person" and codex["STUB_KEY"] == "stub"
    assert codex["CODEX_HOME"] == "/home/worker/.codex"
    assert not any(name.startswith("ANTHROPIC_") for name in codex)
    command = environment(WorkerKind(kind="command", template=("a",)), LAUNCH, TOKEN, OUTSIDE)
    assert set(command) == {"HOME", "LANG", "TERM", TOKEN_ENV}


def test_the_model_api_is_the_base_url_when_set_and_what_the_file_adds() -> None:
    assert model_apis(WorkerKind(kind="claude"), OUTSIDE) == ["http://127.0.0.1:9999"]
    assert model_apis(WorkerKind(kind="claude"), {}) == ["https://api.anthropic.com"]
    kind = WorkerKind(kind="codex", egress=("http://127.0.0.1:7000",))
    assert model_apis(kind, {}) == [
        "https://api.openai.com",
        "https://chatgpt.com",
        "http://127.0.0.1:7000",
    ]


def test_the_home_files_hold_the_prompt_the_token_and_the_kinds_config() -> None:
    written = files(WorkerKind(kind="claude"), LAUNCH, TOKEN, PROMPT)
    assert written[PurePosixPath(".wvo/prompt.md")] == PROMPT
    assert TOKEN in written[PurePosixPath(".wvo/mcp.json")]
    assert PurePosixPath(".claude/settings.json") in written
    codex = files(WorkerKind(kind="codex"), LAUNCH, TOKEN, PROMPT)
    assert PurePosixPath(".codex/config.toml") in codex
    assert TOKEN not in codex[PurePosixPath(".codex/config.toml")]  # from its environment


def test_a_command_template_is_filled_in_argument_by_argument() -> None:
    kind = WorkerKind(kind="command", template=("agent", "--model={model}", "{prompt_file}"))
    line = argv(kind, LAUNCH, "/usr/bin/agent")
    assert line == ["/usr/bin/agent", "--model=claude-sonnet-4-5", "/home/worker/.wvo/prompt.md"]


def test_template_problems_name_unknown_placeholders_and_refuse_the_prompt_itself() -> None:
    assert template_problems(["a", "{prompt_file}", "{model}-{task_id}", "{mcp_url}"]) == []
    [unknown] = template_problems(["{home}"])
    assert "{home}" in unknown and "{prompt_file}" in unknown
    [broken] = template_problems(["{prompt"])
    assert "{prompt" in broken
    [secret] = template_problems(["--prompt={prompt}"])
    assert "lease token" in secret and "{prompt_file}" in secret


def test_each_kind_is_metered_where_a_base_url_can_move_its_traffic() -> None:
    claude, codex = WorkerKind(kind="claude"), WorkerKind(kind="codex")
    assert metered(claude, OUTSIDE) == ("anthropic", "http://127.0.0.1:9999")
    assert metered(codex, OUTSIDE) == ("openai", "https://api.openai.com/v1")
    assert metered(codex, {**OUTSIDE, "OPENAI_BASE_URL": "https://proxy.example/v1/"}) == (
        "openai", "https://proxy.example/v1")  # fmt: skip
    signed_in = {k: v for k, v in OUTSIDE.items() if k != "OPENAI_API_KEY"}
    assert metered(codex, signed_in) is None  # a ChatGPT login: its own service
    assert metered(codex, signed_in, api_key_file=True) is not None
    assert metered(WorkerKind(kind="command", template=("x",)), OUTSIDE) is None


def test_a_metered_codex_is_given_a_provider_of_the_autopilots_own_last() -> None:
    kind = WorkerKind(kind="codex", extra_args=("-c", 'model_provider="mine"'))
    line = argv(kind, LAUNCH, "/opt/codex")
    env = {"OPENAI_API_KEY": "sk"}
    through_meter(kind, line, env, "http://127.0.0.1:5555/v1")
    assert line[-1] == "-"  # the prompt still comes on stdin
    given = [line[i + 1] for i, part in enumerate(line) if part == "-c"]
    assert given.index('model_provider="wvo-meter"') > given.index('model_provider="mine"')
    assert 'model_providers.wvo-meter.base_url="http://127.0.0.1:5555/v1"' in given
    assert 'model_providers.wvo-meter.env_key="OPENAI_API_KEY"' in given
    claude_env: dict[str, str] = {}
    through_meter(WorkerKind(kind="claude"), [], claude_env, "http://127.0.0.1:5555")
    assert claude_env == {"ANTHROPIC_BASE_URL": "http://127.0.0.1:5555"}


def test_an_acp_worker_runs_the_driver_which_starts_its_agent_from_the_home_config() -> None:
    gemini = WorkerKind(kind="acp", agent="gemini", extra_args=("--debug",))
    line = argv(gemini, LAUNCH, "/opt/gemini/bin/gemini")
    assert line[1:] == ["-P", "-m", "wvo_mcp.autopilot.acp_driver", "/home/worker/.wvo/acp.json"]
    written = files(gemini, LAUNCH, TOKEN, PROMPT, "/opt/gemini/bin/gemini")
    config = json.loads(written[PurePosixPath(".wvo/acp.json")])
    assert config == {
        "agent": ["/opt/gemini/bin/gemini", "--experimental-acp", "--model",
                  "claude-sonnet-4-5", "--allowed-mcp-server-names", "wvo", "--debug"],
        "cwd": "/work/project.wvo-worktrees/E1.T3/1",
        "mcp_url": "http://127.0.0.1:40123/mcp",
        "mcp_name": "wvo",
        "permissions": "allow",
        "session_meta": {},
        "poll_seconds": 5.0,
    }  # fmt: skip
    assert TOKEN not in json.dumps(config) and TOKEN not in " ".join(line)
    claude = files(WorkerKind(kind="acp", agent="claude-acp"), LAUNCH, TOKEN, PROMPT, "/c")
    settings = json.loads(claude[PurePosixPath(".claude/settings.json")])
    assert settings["disableAllHooks"] is True
    meta = json.loads(claude[PurePosixPath(".wvo/acp.json")])["session_meta"]
    assert meta == {"claudeCode": {"options": {"settingSources": ["user"]}}}


def test_an_acp_worker_gets_its_agents_variables_and_is_metered_on_its_api() -> None:
    outside = {**OUTSIDE, "GEMINI_API_KEY": "g-key", "GOOGLE_CLOUD_PROJECT": "p"}
    gemini = WorkerKind(kind="acp", agent="gemini")
    env = environment(gemini, LAUNCH, TOKEN, outside)
    assert env["GEMINI_API_KEY"] == "g-key" and env["GOOGLE_CLOUD_PROJECT"] == "p"
    assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"} & set(env)
    assert metered(gemini, outside) == ("gemini", "https://generativelanguage.googleapis.com")
    assert model_apis(gemini, {}) == ["https://generativelanguage.googleapis.com"]
    through_meter(gemini, line := [], env, "http://127.0.0.1:5000")
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:5000" and line == []
    claude = WorkerKind(kind="acp", agent="claude-acp")
    assert metered(claude, OUTSIDE) == ("anthropic", "http://127.0.0.1:9999")
    custom = WorkerKind(kind="acp", agent="custom", executable="/opt/agent")
    assert metered(custom, OUTSIDE) is None  # no API named: its usage is unknown
    assert set(environment(custom, LAUNCH, TOKEN, OUTSIDE)) == {"HOME", "LANG", "TERM", TOKEN_ENV}
    named = WorkerKind(kind="acp", agent="custom", executable="/opt/agent", api="openai")
    assert metered(named, OUTSIDE) == ("openai", "https://api.openai.com/v1")


def test_opencode_gets_its_settings_in_its_home_and_its_apis_key_alone() -> None:
    opencode = WorkerKind(kind="acp", agent="opencode")
    written = files(opencode, LAUNCH, TOKEN, PROMPT, "/opt/opencode")
    settings = json.loads(written[PurePosixPath(".config/opencode/opencode.json")])
    assert settings["model"] == settings["small_model"] == "anthropic/claude-sonnet-4-5"
    assert settings["provider"] == {"anthropic": {"models": {"claude-sonnet-4-5": {}}}}
    env = environment(opencode, LAUNCH, TOKEN, OUTSIDE)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-person" and "OPENAI_API_KEY" not in env
    assert env["OPENCODE_DISABLE_PROJECT_CONFIG"] == "1"
    assert metered(opencode, OUTSIDE) == ("anthropic", "http://127.0.0.1:9999")
    # Its meter, merged over its settings: the path its client adds the API's endpoints to.
    through_meter(opencode, line := [], env, "http://127.0.0.1:5000")
    merged = json.loads(env["OPENCODE_CONFIG_CONTENT"])
    assert merged == {
        "provider": {"anthropic": {"options": {"baseURL": "http://127.0.0.1:5000/v1"}}}
    }
    assert line == []
    on_openai = WorkerKind(kind="acp", agent="opencode", api="openai")
    env = environment(on_openai, LAUNCH, TOKEN, OUTSIDE)
    assert env["OPENAI_API_KEY"] == "sk-openai-person" and "ANTHROPIC_API_KEY" not in env
    assert metered(on_openai, {"ANTHROPIC_API_KEY": "k"}) is None  # OpenAI's key it needs
    written = files(on_openai, LAUNCH, TOKEN, PROMPT, "/opt/opencode")
    model = json.loads(written[PurePosixPath(".config/opencode/opencode.json")])["model"]
    assert model == "openai/claude-sonnet-4-5"


def test_an_adapter_gets_the_login_of_the_cli_it_wraps(tmp_path: Path) -> None:
    """Zed's adapters run Claude Code and Codex, which read their logins from the run's
    home: the person's copied there as for those CLIs' own workers; no other agent's."""
    person, home = tmp_path / "person", tmp_path / "home"
    for name in (".claude/.credentials.json", ".codex/auth.json"):
        (person / name).parent.mkdir(parents=True, exist_ok=True)
        (person / name).write_text(f"{name} of the person")
    for agent, copied in (("claude-acp", ".claude/.credentials.json"),
                          ("codex-acp", ".codex/auth.json"), ("gemini", None)):  # fmt: skip
        kind = WorkerKind(kind="acp", agent=agent)
        assert configured_as(kind) == {"claude-acp": "claude", "codex-acp": "codex"}.get(
            agent, "acp"
        )
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        isolation._copy_credentials(configured_as(kind), home, {"HOME": str(person)})
        found = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
        assert found == ([copied] if copied else [])


def test_only_codex_and_its_adapter_are_metered_by_an_api_key_login() -> None:
    """Codex's auth.json holding an API key meters Codex and Zed's adapter of it, whose
    runs read it; it says nothing of another agent's key."""
    for kind in (WorkerKind(kind="codex"), WorkerKind(kind="acp", agent="codex-acp")):
        assert metered(kind, {}, api_key_file=True) == ("openai", "https://api.openai.com/v1")
    assert metered(WorkerKind(kind="acp", agent="gemini"), {}, api_key_file=True) is None
