"""The real Claude Code and Codex CLIs (pinned in tests/claude_code/) start wvo-mcp from
exactly the files `wvo-mcp init` wrote into a person's repository (.mcp.json and
.codex/config.toml; nothing passed on their command lines but warm start's switches, as the
tests' servers have them), and each works one starter task through it, their models replaced
by scripted APIs on 127.0.0.1."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.autopilot.test_codex_worker import CODEX, MODEL
from tests.autopilot.test_codex_worker import serve_model as serve_responses
from tests.conftest import fresh_env, open_db
from tests.gitwork import git
from tests.integration.test_claude_code import CLAUDE, ScriptedModel, claude_env, serve_model
from tests.integration.test_codex_http import ClaimingModel
from tests.integration.test_init import init

pytestmark = pytest.mark.skipif(
    not CLAUDE.exists() or not CODEX.exists() or shutil.which("node") is None,
    reason="the Claude Code and Codex CLIs are not installed (scripts/setup installs them)",
)
RUN_TIMEOUT_S = 180


@pytest.fixture
def wired(tmp_path: Path) -> tuple[Path, str]:
    """A person's repository after `wvo-mcp init`, with the pinned CLIs on PATH (as a
    person's would be); and that PATH."""
    (tmp_path / "home").mkdir()
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    node = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    path = f"{CLAUDE.parent}:{node}:/usr/bin:/bin"
    done = init(repo, path=path)
    assert done.returncode == 0, done.stderr
    return repo, path


def done_by(repo: Path) -> dict[str, str]:
    """Each done task, and who finished it."""
    with open_db(repo / ".wvo") as db:
        rows = db.execute(
            "SELECT task_id, actor FROM task_events WHERE to_status = 'done' ORDER BY id"
        ).fetchall()
    return {task: actor for task, actor in rows}


def test_claude_code_works_a_task_from_the_files_init_wrote(wired: tuple[Path, str]) -> None:
    repo, path = wired
    model = ScriptedModel()
    api = serve_model(model)
    try:
        run = subprocess.run(
            [str(CLAUDE), "-p", "Work the wvo-mcp loop: take one task and finish it.",
             "--allowedTools", "mcp__wvo__*", "--output-format", "stream-json", "--verbose"],
            cwd=repo,
            env=claude_env(api, repo.parent / "home", path, **fresh_env({}, warm=True)),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    offered = {t["name"] for r in model.requests for t in r.get("tools", [])}
    assert "mcp__wvo__claim_task" in offered and "mcp__wvo__task_create" not in offered
    finished = done_by(repo)
    assert list(finished) == ["wvo-start-build"]  # the starter task WSJF ranks first
    assert finished["wvo-start-build"].startswith("claude-code")  # named by its client
    # The work-loop section init wrote reached the model with the project's instructions.
    assert "Work comes from wvo-mcp" in json.dumps(model.requests[-1])


def test_codex_works_a_task_from_the_files_init_wrote(wired: tuple[Path, str]) -> None:
    repo, path = wired
    home = repo.parent / "home"
    (home / ".codex").mkdir()
    # The person trusts the project once (Codex asks on first use); only then does it read
    # the project's .codex/config.toml.
    (home / ".codex" / "config.toml").write_text(f'[projects."{repo}"]\ntrust_level = "trusted"\n')
    model = ClaimingModel()
    api = serve_responses(model)
    stub = "model_providers.stub"
    try:
        run = subprocess.run(
            [str(CODEX), "exec", "--json", "--model", MODEL,
             "-c", 'approval_policy="never"', "-c", "tool_output_token_limit=100000",
             "-c", 'model_provider="stub"', "-c", f'{stub}.name="stub"',
             "-c", f'{stub}.base_url="http://127.0.0.1:{api.server_address[1]}/v1"',
             "-c", f'{stub}.env_key="STUB_API_KEY"', "-c", f'{stub}.wire_api="responses"',
             "-c", f"{stub}.request_max_retries=0", "-c", f"{stub}.stream_max_retries=0",
             # Codex hands a server only a few variables of its own: the switches, as a
             # person's file could hold them.
             *[word for name, value in fresh_env({}, warm=True).items()
               for word in ("-c", f'mcp_servers.wvo.env.{name}="{value}"')],
             "Claim the next task with claim_task and mark it done."],
            cwd=repo,
            env={"PATH": path, "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
                 "STUB_API_KEY": "scripted"},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert [c.get("claimed") for c in model.claims] == [True], model.claims
    finished = done_by(repo)
    assert list(finished) == ["wvo-start-build"]
    assert finished["wvo-start-build"].startswith("codex")
