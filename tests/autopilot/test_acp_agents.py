"""Real coding agents from the npm registry as ACP workers (tests/claude_code's lock file):
Gemini CLI, and Zed's adapters of Claude Code and Codex, each driven by the autopilot's ACP
driver in the worker's real sandbox against a scripted model on 127.0.0.1 that speaks its
vendor's wire format (scripted_api.py), reached only through the run's meter. Each lands its
task through the merge queue and is charged exactly what the scripted API billed."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, autopilot, backlog, git, one_provider
from tests.autopilot.scripted_api import STEERED, STEERS, USAGE, ScriptedApi
from tests.autopilot.test_person_hand import summaries
from tests.conftest import ROOT, open_db, wvo
from tests.integration.test_init import alone_on_path
from tests.security.tenancy import started, statuses, trail, until, worktree
from wvo_mcp import processes
from wvo_mcp.autopilot import orphans
from wvo_mcp.rules import billing
from wvo_mcp.wiring.doctor import CLIENT_FILES

BIN = ROOT / "tests" / "claude_code" / "node_modules" / ".bin"
pytestmark = pytest.mark.slow

# preset: (its CLI, the tier's model, its wire format, its key's variable, its base URL's)
AGENTS = {
    "gemini": ("gemini", "gemini-2.5-pro", "gemini", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"),
    "claude-acp": ("claude-code-acp", "claude-sonnet-4-5", "anthropic", "ANTHROPIC_API_KEY",
                   "ANTHROPIC_BASE_URL"),
    "codex-acp": ("codex-acp", "stub-model", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "opencode": ("opencode", "claude-sonnet-4-5", "anthropic", "ANTHROPIC_API_KEY",
                 "ANTHROPIC_BASE_URL"),
}  # fmt: skip
# Where each CLI is: npm links the packages' commands, OpenCode's Linux build has none.
WHERE = {"opencode": ROOT / "tests/claude_code/node_modules/opencode-linux-x64/bin/opencode"}


def installed(agent: str) -> Path:
    """The agent's CLI, the test skipped where it is not installed."""
    cli = AGENTS[agent][0]
    program = WHERE.get(agent, BIN / cli)
    if not program.exists() or shutil.which("node") is None:
        pytest.skip(f"{cli} is not installed (scripts/setup installs it with npm)")
    return program


def agent_env(
    project: dict[str, Path], agent: str, tasks: list[dict[str, object]], api: ScriptedApi
) -> dict[str, str]:
    """The autopilot's environment for its one provider `agent` (skipped where it is not
    installed), with `tasks` in the backlog, against `api` in the agent's wire format."""
    _, model, api_name, key, base = AGENTS[agent]
    # poll_seconds: a person's words reach the driver at its next read of the task, 0.5 s on.
    worker = {"kind": "acp", "agent": agent, "executable": installed(agent), "poll_seconds": 0.5}
    project["providers"].write_text(one_provider(agent, "only", model, worker, (0.001, 0.002)))
    anyio.run(backlog, project, tasks)
    home = project["state"].parent / "home"
    home.mkdir()
    url = api.url + ("/v1" if api_name == "openai" else "")
    return {"HOME": str(home), key: "scripted", base: url}


def run_agent(
    project: dict[str, Path],
    agent: str,
    tasks: list[dict[str, object]],
    api: ScriptedApi | None = None,
) -> tuple[subprocess.CompletedProcess[str], ScriptedApi]:
    """The autopilot run, its one provider `agent` (skipped where it is not installed), on
    `tasks`, against a scripted API in the agent's wire format (`api`, or a new one)."""
    api = api or ScriptedApi()
    try:
        return autopilot(project, **agent_env(project, agent, tasks, api)), api
    finally:
        api.close()


@pytest.mark.parametrize("agent", list(AGENTS))
def test_a_real_agent_over_acp_lands_its_task_charged_what_its_api_billed(
    agent: str, project: dict[str, Path]
) -> None:
    api_name = AGENTS[agent][2]
    task = f"{agent.replace('-', '')}1"
    ran, api = run_agent(project, agent, [{"id": task, "title": f"a task for {agent}"}])
    log = (project["state"] / "runs" / task / "1.log").read_text()
    assert ran.returncode == 0, ran.stderr[-3000:]
    offered = [json.dumps(r.get("tools", []))[:3000] for r in api.requests[api_name][:1]]
    assert "1 launched, 1 done" in ran.stdout, ran.stdout + log[-4000:] + str(offered)
    shown = subprocess.run(
        ["git", "show", f"wvo/{task}:{task}.txt"], cwd=project["repo"], capture_output=True,
        text=True,
    )  # fmt: skip
    # Seen once in CI, on a busy machine, not since: what landed where, should it come again.
    landed = git(project["repo"], "log", "--all", "--oneline", "--stat", "-6")
    assert shown.stdout.strip() == task, (shown.stderr, landed, ran.stdout, log[-6000:])
    assert '"event":"tool"' in log and '"type":"acp_end","stop_reason":"end_turn"' in log
    assert "exited with 0" in log  # the driver ended with its agent's turn, not killed
    moves = [(actor, to) for actor, kind, to, _ in trail(project, task)
             if kind in ("claimed", "status")]  # fmt: skip
    with open_db(project["state"]) as db:
        used = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE length(period) = 10"
        ).fetchone()
    assert [m[1] for m in moves] == ["in_progress", "needs_review", "done"]
    assert moves[-1][0] == "autopilot"  # landed by the merge queue
    answered = api.answered(api_name)
    assert tuple(used) == (USAGE[0] * answered, USAGE[1] * answered), (tuple(used), answered)
    if agent == "codex-acp":  # Codex's own sandbox off inside wvo-mcp's, as `codex exec`'s
        items = [item for request in api.requests["openai"] for item in request["input"]]
        told = json.dumps([item for item in items if item.get("role") == "developer"])
        assert "`sandbox_mode` is `danger-full-access`" in told, told[:2000]
        assert "workspace-write" not in told, told[:2000]
    # Its shell printed its environment to the model: the meter's address, never the API's.
    seen = json.dumps(api.requests[api_name])
    assert "HOME=" in seen and api.url not in seen, re.findall(r"\w+=http[^\\]+", seen)


def kill_when_held(project: dict[str, Path], api: ScriptedApi, killed: list[int]) -> None:
    """Once the cut answer has started, SIGKILL every process of the autopilot's worker
    runs (each carries orphans.MARK, `<its run's id>/…`), as the kernel's OOM killer would."""
    if not api.holding.wait(RUN_TIMEOUT_S):
        return
    with open_db(project["state"]) as db:
        [run] = db.execute("SELECT id FROM autopilot_runs WHERE state != 'ended'").fetchall()
    for seen in processes.every():
        if (processes.environ_value(seen.pid, orphans.MARK) or "").startswith(f"{run[0]}/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(seen.pid, signal.SIGKILL)
                killed.append(seen.pid)


@pytest.mark.parametrize("agent", list(AGENTS))
def test_a_real_agent_killed_mid_answer_is_charged_all_its_api_billed(
    agent: str, project: dict[str, Path]
) -> None:
    """Its run killed while its model's answer streams: charged what the API said it
    billed, and for what the answer had not yet said, its bound (docs/security.md, "What a
    run is charged"): OpenAI's input, said only at its end, the request's bytes; the output,
    a byte of the deltas that passed per token (each of these is one token of one byte, but
    a Gemini chunk's is counted by its whole content)."""
    api_name = AGENTS[agent][2]
    api, killed = ScriptedApi(cut=True), []
    killer = threading.Thread(target=kill_when_held, args=(project, api, killed), daemon=True)
    killer.start()
    task = f"{agent.replace('-', '')}k"
    ran, _ = run_agent(project, agent, [{"id": task, "title": "killed", "max_attempts": 1}], api)
    killer.join(RUN_TIMEOUT_S)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert killed and api.released.wait(RUN_TIMEOUT_S), ran.stdout  # the answer was cut
    assert "1 launched, 0 done" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        used = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE length(period) = 10"
        ).fetchone()
    billed_in, billed_out = api.billed
    # A cut Responses answer never said its input: it is bounded by its request's bytes, as
    # Codex's own web search is off (web_search = "disabled"; rules/wire.py would bound a
    # request that offers it by the ceiling).
    unsaid = api.cut_size - USAGE[0] if api_name == "openai" else 0
    assert used[0] == billed_in + unsaid, (tuple(used), api.billed, api.cut_size)
    if api_name == "gemini":
        assert used[1] > billed_out, (tuple(used), api.billed)
    else:
        assert used[1] == billed_out, (tuple(used), api.billed)


# Those a person may have alone: its variables for the scripted API (its key, its base URL).
ALONE = {"gemini": ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"),
         "opencode": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}  # fmt: skip


@pytest.mark.parametrize("agent", list(ALONE))
def test_a_person_with_only_one_acp_agent_runs_init_then_the_autopilot_and_work_lands(
    agent: str, tmp_path: Path
) -> None:
    """docs/autopilot.md, "With only Gemini CLI or OpenCode installed", as a person runs it."""
    api_name = AGENTS[agent][2]
    program = installed(agent)
    repo, home = tmp_path / "project", tmp_path / "home"
    for folder in (repo, home):
        folder.mkdir()
    wvo = Path(sys.executable).with_name("wvo-mcp")
    path = alone_on_path(tmp_path / f"only-{agent}", program)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("a project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    api = ScriptedApi()
    key, base = ALONE[agent]
    env = {"PATH": f"{wvo.parent}:{path}", "HOME": str(home), key: "scripted",
           base: api.url, "WVO_OTEL_ENABLED": "0"}  # fmt: skip
    try:
        for args in (["init"], ["autopilot", "--until-empty"]):
            ran = subprocess.run(
                [str(wvo), *args], cwd=repo, env=env, capture_output=True, text=True,
                timeout=RUN_TIMEOUT_S,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    finally:
        api.close()
    assert "2 launched, 2 done" in ran.stdout, ran.stdout
    wired = json.loads((repo / CLIENT_FILES[agent]).read_text())  # its own MCP client too
    assert wired["mcp" if agent == "opencode" else "mcpServers"]["wvo"]
    for task in ("wvo-start-build", "wvo-start-map"):
        assert git(repo, "show", f"wvo/{task}:{task}.txt").strip() == task
    with open_db(repo / ".wvo") as db:
        used = db.execute(
            "SELECT sum(input_tokens) FROM provider_usage WHERE length(period) = 10"
        ).fetchone()[0]
    assert used == USAGE[0] * api.answered(api_name)  # metered, exactly as billed


# Recorded from each real agent (the requests its model API gets after a cancel): Gemini CLI
# drops a turn cancelled mid-answer from its history, its prompt with it; cancelled while a
# tool runs, it keeps it. The others keep both.
DROPS_CANCELLED = {"gemini"}
TELL = "- tell: " + STEERS[0][1]


def charged(project: dict[str, Path]) -> tuple[int, int]:
    with open_db(project["state"]) as db:
        used = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE length(period) = 10"
        ).fetchone()
    return tuple(used)


@pytest.mark.parametrize("agent", list(AGENTS))
def test_a_real_agent_told_redirected_and_drained_mid_task_lands_it_in_one_attempt(
    agent: str, project: dict[str, Path]
) -> None:
    """A person's words (while its model thinks), a redirect (while its shell runs) and the
    drain (while its model thinks) each cancel the agent's turn and come as its next prompt.
    Gemini CLI drops a turn cancelled mid-answer from its history (the others keep it); each
    goes on with its task: it heeds each, checkpoints and stops when drained, and the next run
    lands it from that checkpoint, no attempt spent, charged what its API billed."""
    api_name = AGENTS[agent][2]
    task = f"{agent.replace('-', '')}s"
    api = ScriptedApi()
    tasks: list[dict[str, object]] = [
        {"id": task, "title": f"{STEERED}: a task for {agent}", "max_attempts": 1}
    ]
    tree = worktree(project, task)
    try:
        env = agent_env(project, agent, tasks, api)
        with started(project, "--grace", "600", **env) as pilot:
            for kind, words, where in STEERS:
                until(pilot, f"the agent waiting for the {kind} ({where})", lambda kind=kind: (
                    kind in api.thinking or (tree / f"{task}.waiting-{kind}").exists()
                ))  # fmt: skip
                if kind == "drain":
                    pilot.process.send_signal(signal.SIGINT)
                    break
                said = (["tell", "--task", task, words] if kind == "tell"
                        else ["redirect", task, "--description", words])  # fmt: skip
                assert wvo(project["state"], *said).returncode == 0
                until(pilot, f"the agent heeding the {kind}", lambda kind=kind: any(
                    f"{task}@heard-{kind}" in s for s in summaries(project, task)
                ))  # fmt: skip
            out = pilot.finish()
        first = (project["state"] / "runs" / task / "1.log").read_text()
        assert "told 1 worker(s) to checkpoint and stop" in out, out
        assert statuses(project) == {task: "pending"}, out + first[-4000:]
        assert f"{task}@heard-drain" in summaries(project, task)[-1], first[-4000:]
        told = re.findall(r'"event":"told","text":"(\w+):', first)
        assert told == ["tell", "redirect", "drain"], first[-4000:]
        assert "exited with 0" in first, first[-2000:]  # no kill: it stopped as told
        ran = autopilot(project, **env)
    finally:
        api.close()
    assert ran.returncode == 0, ran.stderr[-3000:]
    second = (project["state"] / "runs" / task / "2.log").read_text()
    assert "1 launched, 1 done" in ran.stdout, ran.stdout + second[-4000:]
    assert git(project["repo"], "show", f"wvo/{task}:{task}.txt").strip() == task
    with open_db(project["state"]) as db:
        attempts = db.execute("SELECT attempts FROM tasks WHERE id = ?", (task,)).fetchone()[0]
    assert attempts == 0  # the drain cost nothing, and nothing failed
    assert api.thinking == ["tell", "drain"]
    # What it did with the turn cancelled for the tell: kept, the request after holds its
    # first prompt, and again in the prompt after it; dropped, only the latter.
    after = next(json.dumps(r) for r in api.requests[api_name] if TELL in json.dumps(r))
    kept = after.count("is already claimed for you") == 2
    assert kept == (agent not in DROPS_CANCELLED), after[:3000]
    # An OpenAI answer says its input only as it ends: one cut before is charged its bound,
    # its request's bytes (Codex's own web search is off), never the ceiling.
    spent = charged(project)
    if api_name == "openai":
        assert api.billed[0] < spent[0] < api.billed[0] + billing.CEILING_INPUT, spent
        assert spent[1] == api.billed[1], (spent, api.billed)
    else:
        assert spent == (api.billed[0], api.billed[1]), api.billed
