"""A stand-in for `claude -p … --output-format stream-json --verbose` (and, called as
`… exec`, for `codex exec --json`), for the demo, the tests and the benchmark (no model
needed), as far as the autopilot can tell: it reads the
MCP config it was given, works its task through that wvo-mcp server (checkpoint, a commit
in its worktree, plan_update done), and prints Claude Code's stream-json lines with usage.
The task's metadata.fake picks a misbehaviour: crash, hang, rate_limit, context_limit,
auth, denied (its CLI refused a tool), dirty (done, leaving a file uncommitted), shared
(writing shared.txt, which conflicts with every other such task) or plant (hooks and
drivers left in the repository, see plant()); with `_once`, only on the
first attempt; with metadata.fake_provider or fake_model, only on that provider or model.
It also answers review prompts (metadata.fake_review) and planning prompts (a goal).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp import Client, StdioServerParameters

USAGE = {"input_tokens": 1000, "cache_read_input_tokens": 500, "output_tokens": 100}
ERRORS = {
    "rate_limit": (429, "completed", "API Error: Request rejected (429) · rate limit"),
    "context_limit": (400, "prompt_too_long", "Prompt is too long"),
    "auth": (401, "completed", "Invalid API key · Fix external API key"),
}


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


# Codex's messages for the same failures (recorded from codex-cli 0.169.0).
CODEX_ERRORS = {
    429: "exceeded retry limit, last status: 429 Too Many Requests",
    400: "Codex ran out of room in the model's context window. Start a new thread or clear "
    "earlier history before retrying.",
    401: "unexpected status 401 Unauthorized: Incorrect API key provided",
}
CODEX = False  # set when run as `codex exec --json`


def result(
    is_error: bool,
    text: str,
    status: int | None = None,
    reason: str = "completed",
    denied: tuple[str, ...] = (),
) -> None:
    if CODEX:
        if is_error:
            emit({"type": "turn.failed", "error": {"message": CODEX_ERRORS.get(status or 0, text)}})
            return
        emit({"type": "item.completed",
              "item": {"id": "item_0", "type": "agent_message", "text": text}})  # fmt: skip
        usage = {"input_tokens": 1500, "cached_input_tokens": 500, "output_tokens": 100}
        emit({"type": "turn.completed", "usage": usage})
        return
    emit({
        "type": "result", "subtype": "success", "is_error": is_error,
        "api_error_status": status, "result": text, "terminal_reason": reason,
        "total_cost_usd": 0 if is_error else 0.01,
        "usage": {k: 0 for k in USAGE} if is_error else USAGE,
        "permission_denials": [{"tool_name": t, "tool_use_id": "toolu_1", "tool_input": {}}
                               for t in denied],
    })  # fmt: skip


def _server(config: dict[str, Any]) -> StdioServerParameters:
    """The wvo-mcp server the config it was given names."""
    return StdioServerParameters(command=config["command"], args=config["args"], env=config["env"])


def plant(marker: str) -> None:
    """A hostile worker's parting gift to the repository: hooks, filter and diff drivers that
    would create `marker` if the autopilot's own git ever ran them."""
    touch = f"touch '{marker}'"
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    hooks = Path(common) / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("post-checkout", "post-rewrite", "pre-rebase", "post-merge",
                 "reference-transaction", "pre-auto-gc", "post-index-change"):  # fmt: skip
        (hooks / name).write_text(f"#!/bin/sh\n{touch}\n")
        (hooks / name).chmod(0o755)
    for key, value in {
        "filter.evil.smudge": f"{touch}; cat",
        "filter.evil.clean": f"{touch}; cat",
        "diff.evil.textconv": f"{touch}; cat",
        "core.fsmonitor": touch,
    }.items():
        subprocess.run(["git", "config", "-f", f"{common}/config", key, value], check=True)


def commit(task_id: str, note: str, shared: bool) -> None:
    # `shared`: every such task writes the same file, so their branches conflict.
    if Path(".plant").exists():  # see plant(): every file through the hostile drivers
        Path(".gitattributes").write_text("* filter=evil diff=evil\n")
    with Path("shared.txt" if shared else f"{task_id}.txt").open("a") as out:
        out.write(f"{task_id} by {note}\n")  # every run changes something
    git = ["git", "-c", "user.name=fake", "-c", "user.email=fake@localhost"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", f"{task_id}"], check=True)


async def review(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """A reviewer's run: approve, or (metadata.fake_review = changes_once) ask for changes
    the first time."""
    task_id = re.search(r"You review task '([^']+)'", args.prompt)
    assert task_id is not None
    params = _server(config)
    async with Client(params) as client:
        task = await client.call_tool("task_get", {"task_id": task_id.group(1)})
        detail = task.structured_content or {}
    asked = any(e.get("kind") == "review" for e in detail.get("recent_events", []))
    if detail.get("metadata", {}).get("fake_review") == "changes_once" and not asked:
        result(False, "REQUEST CHANGES\nAdd a test for the empty case.")
    else:
        result(False, "APPROVE\nLooks right.")
    return 0


async def plan(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """A planner's run: three tasks for the goal, the last two after the first."""
    goal = args.prompt.split("# Goal", 1)[1].strip().splitlines()[0]
    tasks = [
        {"id": "G1", "title": f"design: {goal}"[:200]},
        {"id": "G2", "title": f"build: {goal}"[:200], "depends_on": ["G1"]},
        {"id": "G3", "title": f"test: {goal}"[:200], "depends_on": ["G1"]},
    ]
    params = _server(config)
    async with Client(params) as client:
        created = await client.call_tool("task_create", {"tasks": tasks})
    result(created.is_error, "planned G1, G2, G3" if not created.is_error else "refused")
    return 1 if created.is_error else 0


async def work(args: argparse.Namespace, config: dict[str, Any]) -> int:
    if "You review task" in args.prompt:
        return await review(args, config)
    if "# Goal" in args.prompt:
        return await plan(args, config)
    found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", args.prompt)
    assert found is not None, "no task in the prompt"
    task_id, token = found.groups()
    held = {"task_id": task_id, "lease_token": token}
    emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "model": args.model})
    params = _server(config)
    async with Client(params) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            answer = await client.call_tool(tool, arguments)
            assert not answer.is_error, answer
            return answer.structured_content or {}

        task = await call("task_get", task_id=task_id)
        metadata = task.get("metadata", {})
        mode = metadata.get("fake", "ok")
        provider = config["env"]["WVO_AGENT_PROVIDER"]
        if metadata.get("fake_provider", provider) != provider:
            mode = "ok"  # misbehaves on one provider only
        if metadata.get("fake_model", args.model) != args.model:
            mode = "ok"  # or on one model only
        resumed = "An earlier attempt got this far" in args.prompt
        if mode.endswith("_once"):
            mode = "ok" if resumed else mode.removesuffix("_once")
        if mode == "denied":  # the CLI would not let it run what it needed
            result(False, "I could not run the tests: permission denied.", denied=("Bash",))
            return 0
        if mode in ERRORS:
            status, reason, text = ERRORS[mode]
            result(True, text, status, reason)
            return 1
        await call("checkpoint", summary=f"half of {task_id}", progress=50,
                   next_steps="write the file", **held)  # fmt: skip
        if mode == "hang":
            await anyio.sleep(3600)
        if mode == "crash":
            return 3  # no result line: a crash
        attempt = re.search(r"\(attempt (\d+)\)", args.prompt)
        note = f"{config['env']['WVO_AGENT_ID']}, attempt {attempt.group(1) if attempt else 1}"
        if mode == "plant":
            await anyio.Path(".plant").write_text("")
        await anyio.to_thread.run_sync(commit, task_id, note, mode == "shared")
        if mode == "plant":
            await anyio.to_thread.run_sync(plant, metadata["fake_marker"])
        if mode == "dirty":
            await anyio.Path("notes.txt").write_text("not committed\n")
        finish = re.search(r"Finish with plan_update: (\w+) when", args.prompt)
        to = finish.group(1) if finish else "done"
        answer = await client.call_tool("plan_update", {"status": to, **held})
        if answer.is_error:  # e.g. the verification gate refused done: say so and stop
            text = answer.content[0].text if answer.content else ""  # type: ignore[union-attr]
            result(False, f"could not finish {task_id}: {text[:300]}")
            return 0
    after = " (after review)" if "A reviewer asked for changes" in args.prompt else ""
    result(False, f"done {task_id}" + (" (resumed)" if resumed else "") + after)
    return 0


def main() -> int:
    global CODEX
    if sys.argv[1:2] == ["exec"]:  # codex exec --json ... -c mcp_servers.wvo.X=... PROMPT
        CODEX = True
        parser = argparse.ArgumentParser()
        parser.add_argument("exec")
        parser.add_argument("--model", required=True)
        parser.add_argument("-c", action="append", default=[])
        parser.add_argument("--cd", "--sandbox")
        for flag in ("--json", "--ephemeral", "--skip-git-repo-check"):
            parser.add_argument(flag, action="store_true")
        parser.add_argument("prompt")
        args, _ = parser.parse_known_args()
        overrides = tomllib.loads("\n".join(args.c))
        config = overrides["mcp_servers"]["wvo"]
        emit({"type": "thread.started", "thread_id": "fake"})
        emit({"type": "turn.started"})
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("-p", dest="prompt", required=True)
        parser.add_argument("--mcp-config", required=True)
        parser.add_argument("--model", required=True)
        args, _ = parser.parse_known_args()
        config = json.loads(Path(args.mcp_config).read_text())["mcpServers"]["wvo"]
    return anyio.run(work, args, config)


if __name__ == "__main__":
    sys.exit(main())
