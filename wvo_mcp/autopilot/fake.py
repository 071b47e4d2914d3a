"""A stand-in coding CLI for the demo, tests and benchmarks, with modes that misbehave.

A stand-in for `claude -p … --output-format stream-json --verbose` (and, called as
`… exec`, for `codex exec --json`), for the demo, the tests and the benchmark (no model
needed), as far as the autopilot can tell: it reads its prompt from stdin and the MCP config
it was given (Claude Code's --mcp-config file, or Codex's $CODEX_HOME/config.toml with the
token in its environment), works its task through that wvo-mcp endpoint over HTTP
(checkpoint, a commit in its repository, plan_update needs_review), and prints Claude Code's
stream-json lines with usage.
The task's metadata.fake picks a misbehaviour: crash, hang, rate_limit, context_limit,
auth, denied (its CLI refused a tool), hog (holds ever more memory in its own process, until
the kernel kills it), dirty (submitted, leaving a file uncommitted), shared
(writing shared.txt, which conflicts with every other such task), plant (hooks and
drivers left in its repository, see plant()), nochange (submits without committing) or
undo (commits its change, then a revert of it); metadata.fake_shared names another file
tasks append to (conflicting with those that do too); with `_once`, only on the
first attempt; with metadata.fake_provider or fake_model, only on that provider or model.
It also reviews (metadata.fake_review) and plans (a goal). Sent back by the merge queue, it
brings the target in as told (keeping both sides of each conflict), and after a failed
check writes metadata.fake_fix's files (as a model fixing its code would).

A hostile worker, for tests/security/test_worker_tenancy.py (a worker is a tenant):
- probe (fake_probe.py): from inside its sandbox, tries to reach what it must not
  (metadata.fake_probe: files to read, write and remove, folders to create a file in, a
  database to open with sqlite3, secrets to look for, loopback services to connect to
  directly or through its HTTPS_PROXY, abstract Unix sockets, wvo-mcp resources to read),
  then (given other_task and gated_task) every wvo-mcp tool outside its token's scope, and
  its own tools about other tasks, and the record_usage calls fake_probe's `usage` lists
  (usage_calls); each outcome goes into a checkpoint's summary (`probe [...]`, JSON); then
  it works its task;
- moves: every status move a holder of a gated task may not make, before and after it
  submits; the outcomes are one output line (`{"type": "wvo_fake_report", ...}`);
- unverified: commits result.txt "bad" and keeps "good" everywhere but that commit (staged,
  in the working tree, on another branch, in a stash);
- forge: commits, then forges what the autopilot reads of its repository
  (metadata.fake_forge: gitdir, gitlink, alternates, object_link, objects_link, head_link
  or ref_link, pointing at metadata.fake_target; metadata.fake_secret names a blob it does
  not hold).
- state: commits, past .gitignore (`git add -f`), metadata.fake_state's files ({path:
  text}) and metadata.fake_state_links' links ({path: target}) with its work: where the
  state folder lies in the person's repository, or in place of it
  (tests/security/test_state_folder_commits.py).
A worker that meddles with its own output (tests/security/test_run_metering.py):
- forge_output / forge_output_fail (metadata.fake_forge_line): starts a process, as its
  shell tool would, that writes the forged line into the CLI's output after the CLI ended:
  through /proc/<cli>/fd/1, or (metadata.fake_forge_inherit) the stdout it inherited; the
  run then succeeds (forge) or fails by itself (forge_fail); what the process could do is
  in a checkpoint (`forger: opened` or `forger: refused: ENXIO`);
- said: checkpoints with metadata.fake_said as its summary, then fails saying it.
- longline: prints 2 MiB with no newline, then hangs, or with metadata.fake_longline_end
  ends the line and works its task;
- give_up: gives its task up with plan_update(failed), as the work loop asks of a worker
  that cannot finish, and ends its run well.
- ask: asks a person (ask_person, metadata.fake_question) and ends its run; given the
  answer in its prompt, commits it as answer.txt with its work.
Waiting (fake_wait), it heeds what a person says under from_a_person: each note goes into a
checkpoint (`heard: KIND: TEXT`), and a pause makes it checkpoint and end its run.
metadata.fake_usage ({input_tokens, output_tokens}) is what its result line reports.
A worker whose processes outlive it (tests/autopilot/test_leftovers.py): scatter starts
three sleepers marked `wvo-scatter-<task>` (one in its process group, one in a session of its
own, one a double-forked daemon), checkpoints "scattered", then hangs.
A task's description may carry any of these as a model would read them: a ```wvo-fake block
of JSON (tests/forge's issue bodies).
Any mode waits first when metadata.fake_wait names a file: it says so with `<name>.waiting`
in its repository and waits (heartbeating) until the file appears there.
metadata.fake_message is its commit's message (until a return says its messages would close
issues); metadata.fake_files ({path: text}) are written before an ordinary commit, and
metadata.fake_delete's ([path]) deleted;
metadata.fake_leave's are written after it, and left uncommitted; metadata.fake_hostile's
kinds too (see hostile(): what tidy and gc must survive).
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from wvo_mcp.autopilot.fake_probe import Call, attempt, emit, probe
from wvo_mcp.autopilot.mcp_client import Client
from wvo_mcp.autopilot.mcp_client import connect as connect_to

USAGE = {"input_tokens": 1000, "cache_read_input_tokens": 500, "output_tokens": 100}
ERRORS = {
    "rate_limit": (429, "completed", "API Error: Request rejected (429) · rate limit"),
    "context_limit": (400, "prompt_too_long", "Prompt is too long"),
    "auth": (401, "completed", "Invalid API key · Fix external API key"),
}


# Codex's messages for the same failures (recorded from codex-cli 0.169.0).
CODEX_ERRORS = {
    429: "exceeded retry limit, last status: 429 Too Many Requests",
    400: "Codex ran out of room in the model's context window. Start a new thread or clear "
    "earlier history before retrying.",
    401: "unexpected status 401 Unauthorized: Incorrect API key provided",
}
ERRORS_SAID = {status: said for status, _, said in ERRORS.values()}
CODEX = False  # set when run as `codex exec --json`
ACP = False  # set by fake_acp.py: the outcome is its prompt's answer, not a line
FAILED: str | None = None  # ACP: why the run failed, for the prompt's error
LAST = ""  # ACP: its last words
WAIT_BEAT: Callable[[], Awaitable[None]] | None = None  # ACP: a waiting agent's sign of life


USED: dict[str, int] = {}  # metadata.fake_usage: what this run reports instead of USAGE


def result(
    is_error: bool,
    text: str,
    status: int | None = None,
    reason: str = "completed",
    denied: tuple[str, ...] = (),
) -> None:
    global FAILED, LAST
    if ACP:
        FAILED, LAST = (ERRORS_SAID.get(status or 0, text), "") if is_error else (None, text)
        return
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
        "usage": USED or ({k: 0 for k in USAGE} if is_error else USAGE),
        "permission_denials": [{"tool_name": t, "tool_use_id": "toolu_1", "tool_input": {}}
                               for t in denied],
    })  # fmt: skip


@dataclass(frozen=True)
class Server:
    """The wvo-mcp endpoint the config it was given names, and the run's token."""

    url: str
    token: str


@asynccontextmanager
async def connect(server: Server) -> AsyncIterator[Client]:
    # Its own small client (mcp_client.py): the SDK's import cost each run a second of CPU.
    async with connect_to(server.url, server.token) as client:
        yield client


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


def commit(task_id: str, note: str, shared: str | None, message: str | None = None) -> None:
    # `shared`: every task naming that file writes it, so their branches conflict.
    if Path(".plant").exists():  # see plant(): every file through the hostile drivers
        Path(".gitattributes").write_text("* filter=evil diff=evil\n")
    written = Path(shared or f"{task_id}.txt")
    written.parent.mkdir(parents=True, exist_ok=True)  # an issue's task: gh/OWNER/REPO/N
    with written.open("a") as out:
        out.write(f"{task_id} by {note}\n")  # every run changes something
    git = ["git", "-c", "user.name=fake", "-c", "user.email=fake@localhost"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message or task_id], check=True)


def resolve(target: str) -> None:
    """Merge `target` in; each conflicted file keeps both sides (its markers dropped), as a
    model resolving two appends to one file would."""
    merged = subprocess.run([*GIT, "merge", "-q", "--no-edit", target], capture_output=True)
    if merged.returncode == 0:
        return
    listed = subprocess.run(
        ["git", "diff", "--name-only", "--diff-filter=U"], capture_output=True, text=True
    )
    for name in listed.stdout.split():
        lines = Path(name).read_text().splitlines(keepends=True)
        markers = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")
        Path(name).write_text("".join(x for x in lines if not x.startswith(markers)))
    subprocess.run([*GIT, "add", "-A"], check=True)
    subprocess.run([*GIT, "commit", "-qm", f"merge {target}"], check=True)


# -- a hostile worker (tests/security/test_worker_tenancy.py) ----------------------------------

WAIT_SECONDS = 120.0  # fake_wait: how long it waits for the test's file before it gives up
GIT = ["git", "-c", "user.name=fake", "-c", "user.email=fake@localhost"]


def wait_file(name: str) -> None:
    """Until `name` appears here (then removed, so it is not committed), at most a minute."""
    deadline = time.monotonic() + 60
    while not Path(name).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    Path(name).unlink(missing_ok=True)


HOG_CHUNK_MB = 32
HOG_CHUNKS = 64  # at most 2 GiB: a memory limit far below it stops the hog first


def hog() -> None:
    """Memory written (so resident, not merely reserved), chunk after chunk, kept."""
    held = []
    for _ in range(HOG_CHUNKS):
        held.append(b"\x01" * (HOG_CHUNK_MB << 20))


def shell(line: str) -> str:
    """What a worker's shell command says, and its exit status."""
    done = subprocess.run(line, shell=True, capture_output=True, text=True, check=False)
    return f"{done.stdout}{done.stderr}exit {done.returncode}\n"


MOVES = ("done", "pending", "failed", "cancelled", "in_progress", "blocked",
         "awaiting_approval", "needs_review")  # fmt: skip


async def moves(client: Client, held: dict[str, str], note: str) -> list[dict[str, Any]]:
    """Every move a gated task's holder may not make: done while it holds it; after it
    submits, every status, with its lease token and without; and the person's and the
    reviewer's tools on its own task."""
    task_id = held["task_id"]
    found = [{"move": "in_progress->done", "holder": True,
              **await attempt(client, "plan_update", {"status": "done", **held})}]  # fmt: skip
    await anyio.to_thread.run_sync(commit, task_id, note, None)
    submitted = await attempt(client, "plan_update", {"status": "needs_review", **held})
    found.append({"move": "in_progress->needs_review", "holder": True, **submitted})
    if not submitted["ok"]:
        return found
    for status in MOVES:
        for holder in (True, False):
            given = {"task_id": task_id, "status": status}
            if holder:
                given["lease_token"] = held["lease_token"]
            outcome = await attempt(client, "plan_update", given)
            found.append({"move": f"needs_review->{status}", "holder": holder, **outcome})
    for tool, arguments in (
        ("heartbeat", held),
        ("checkpoint", {**held, "summary": "still mine"}),
        ("review_submit", {"task_id": task_id, "verdict": "approve", "notes": "mine is fine"}),
        ("task_done", {"task_id": task_id}),
        ("task_approve", {"task_id": task_id}),
    ):
        found.append({"move": tool, "holder": True, **await attempt(client, tool, arguments)})
    return found


def git_out(*args: str) -> str:
    return subprocess.run(
        [*GIT, *args], check=True, capture_output=True, text=True
    ).stdout.strip()  # fmt: skip


def unverified(task_id: str) -> None:
    """result.txt is committed "bad"; "good", which would pass, is everywhere but that
    commit: on another branch, in a stash, staged and in the working tree."""
    branch = git_out("symbolic-ref", "--short", "HEAD")
    Path("result.txt").write_text("bad\n")
    git_out("add", "result.txt")
    git_out("commit", "-qm", f"{task_id}: bad")
    git_out("checkout", "-qb", f"{branch}-good")
    Path("result.txt").write_text("good\n")
    git_out("commit", "-qam", f"{task_id}: good, on another branch")
    git_out("checkout", "-q", branch)
    Path("result.txt").write_text("good\n")
    git_out("stash", "-q")
    Path("result.txt").write_text("good\n")
    git_out("add", "result.txt")


def force(files: dict[str, str], links: dict[str, str]) -> None:
    """Files and links written and staged past .gitignore, to go with the next commit."""
    for name, text in files.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(text)
    for name, target in links.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).symlink_to(target)
    git_out("add", "-f", "--", *files, *links)


def forge(kind: str, target: str, secret: str) -> None:
    """Forge what the autopilot reads of this repository, after a real commit."""
    git_dir = Path(".git")
    if kind in ("alternates", "object_link", "objects_link"):
        # A commit whose tree names a blob this repository does not hold.
        listing = git_out("ls-tree", "HEAD") + f"\n100644 blob {secret}\tstolen\n"
        tree = subprocess.run(
            ["git", "mktree", "--missing"], input=listing, check=True, capture_output=True,
            text=True,
        ).stdout.strip()  # fmt: skip
        tip = git_out("commit-tree", tree, "-p", "HEAD", "-m", "stolen")
        git_out("update-ref", "HEAD", tip)
    if kind == "gitdir":
        shutil.rmtree(git_dir)
        git_dir.write_text(f"gitdir: {target}\n")
    elif kind == "gitlink":
        shutil.rmtree(git_dir)
        git_dir.symlink_to(target)
    elif kind == "alternates":
        (git_dir / "objects" / "info" / "alternates").write_text(f"{target}\n")
    elif kind == "object_link":
        loose = git_dir / "objects" / secret[:2] / secret[2:]
        loose.parent.mkdir(exist_ok=True)
        loose.symlink_to(f"{target}/{secret[:2]}/{secret[2:]}")
    elif kind == "objects_link":  # its whole object store
        (git_dir / "objects").rename(git_dir / "objects.real")
        (git_dir / "objects").symlink_to(target)
    elif kind == "head_link":
        (git_dir / "HEAD").unlink()
        (git_dir / "HEAD").symlink_to(target)
    elif kind == "ref_link":
        ref = git_dir / (git_dir / "HEAD").read_text().removeprefix("ref: ").strip()
        ref.unlink(missing_ok=True)
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.symlink_to(target)
    else:
        raise ValueError(f"fake_forge {kind!r}")


HUGE = 1 << 40  # a sparse file's size: 1 TiB, holding nothing
DEEP = 1200  # folders nested: past Python's recursion limit
LONG = (30, 200)  # folders nested, and their names' length: paths past PATH_MAX


def hostile(kinds: list[str]) -> None:
    """Leftovers in a worker's repository after its commit, for the autopilot's tidy and gc
    to survive (tests/security/test_hostile_leftovers.py): `sparse` grows the tracked
    README.md to 1 TiB and `huge` adds such a file; `fifo` and `socket` put one where
    README.md was and one beside; `unreadable` makes README.md and a folder mode 000; `deep`
    and `long` add a folder chain (DEEP levels; LONG's, with long names), a file at the
    bottom."""
    for kind in kinds:
        if kind == "sparse":
            os.truncate("README.md", HUGE)
        elif kind == "huge":
            with open("huge.bin", "wb") as out:
                out.truncate(HUGE)
        elif kind == "fifo":
            os.unlink("README.md")
            os.mkfifo("README.md")
            os.mkfifo("pipe")
        elif kind == "socket":
            os.unlink("README.md")
            for name in ("README.md", "sock"):
                with socket.socket(socket.AF_UNIX) as listening:
                    listening.bind(name)
        elif kind == "unreadable":
            Path("locked").mkdir()
            Path("locked/notes.txt").write_text("work\n")
            for name in ("README.md", "locked"):
                os.chmod(name, 0)
        elif kind in ("deep", "long"):
            levels, name = (DEEP, "d") if kind == "deep" else (LONG[0], "n" * LONG[1])
            chain(Path(kind), levels, name)
        else:
            raise ValueError(f"no hostile kind {kind!r}")


def chain(top: Path, levels: int, name: str) -> None:
    """`levels` folders called `name` in the new folder `top`, notes.txt at the bottom: made
    one folder at a time, as no path reaches that deep."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    notes = os.open("notes.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(notes, b"work at the bottom\n")
    os.close(notes)
    os.close(fd)


async def wait_for(name: str, call: Call, held: dict[str, str]) -> str:
    """Say it waits (`<name>.waiting` in its repository), then wait for `name` to appear
    there, heartbeating so the autopilot sees it alive: "came", "timeout", or "paused" (a
    person paused its task: it checkpointed and stops, as the work loop asks). What a person
    tells it on the way goes into a checkpoint (`heard: ...`)."""
    waiting, wanted = anyio.Path(f"{name}.waiting"), anyio.Path(name)
    await waiting.write_text("")
    deadline = time.monotonic() + WAIT_SECONDS
    beat = 0.0
    while not await wanted.exists():
        if time.monotonic() > deadline:
            return "timeout"
        if time.monotonic() - beat > 1 and WAIT_BEAT is not None:  # as an ACP agent
            await WAIT_BEAT()  # a person's words come from its client: none read here
            beat = time.monotonic()
        elif time.monotonic() - beat > 1:
            told = (await call("heartbeat", **held)).get("from_a_person", [])
            beat = time.monotonic()
            for note in told:
                await call("checkpoint", summary=f"heard: {note['kind']}: {note['text']}", **held)
            stops = [n["kind"] for n in told if n["kind"] in ("pause", "drain")]
            if stops:
                said = "paused by a person" if "pause" in stops else "drained"
                await call("checkpoint", summary=f"{said}: stopped", **held)
                return "paused"
        await anyio.sleep(0.05)
    await waiting.unlink()
    await wanted.unlink()
    return "came"


async def review(text: str, server: Server) -> int:
    """A reviewer's run: approve with review_submit, or (metadata.fake_review =
    changes_once) ask for changes the first time; `silent` gives no verdict."""
    found = re.search(r"You review task '([^']+)'", text)
    assert found is not None
    task_id = found.group(1)
    async with connect(server) as client:
        task = await client.call_tool("task_get", {"task_id": task_id})
        detail = task.structured_content or {}
        asked = any(e.get("kind") == "review" for e in detail.get("recent_events", []))
        wanted = detail.get("metadata", {}).get("fake_review")
        if wanted == "silent":
            result(False, "I looked.")
            return 0
        changes = wanted == "changes_once" and not asked
        verdict = "request_changes" if changes else "approve"
        notes = "Add a test for the empty case." if changes else "Looks right."
        answer = await client.call_tool(
            "review_submit", {"task_id": task_id, "verdict": verdict, "notes": notes}
        )
    said = answer.content[0].text if answer.content else ""
    result(answer.is_error, f"{verdict}: {notes}" if not answer.is_error else said[:300])
    return 0


async def plan(text: str, server: Server) -> int:
    """A planner's run: three tasks for the goal, the last two after the first."""
    goal = text.split("# Goal", 1)[1].strip().splitlines()[0]
    tasks = [
        {"id": "G1", "title": f"design: {goal}"[:200]},
        {"id": "G2", "title": f"build: {goal}"[:200], "depends_on": ["G1"]},
        {"id": "G3", "title": f"test: {goal}"[:200], "depends_on": ["G1"]},
    ]
    async with connect(server) as client:
        created = await client.call_tool("task_create", {"tasks": tasks})
    result(created.is_error, "planned G1, G2, G3" if not created.is_error else "refused")
    return 1 if created.is_error else 0


def asked_of(description: str) -> dict[str, Any]:
    """What a task's words ask of it, as a model reads a task's description: a ```wvo-fake
    block of JSON, read as metadata (how a test's issue body makes its worker wait or ask)."""
    found = re.search(r"```wvo-fake\n(.*?)\n```", description, re.DOTALL)
    asked = json.loads(found.group(1)) if found else {}
    return asked if isinstance(asked, dict) else {}


def mode_of(metadata: dict[str, Any], agent_id: str, model: str, resumed: bool) -> str:
    """How this run behaves (metadata.fake), here: `ok` where it misbehaves elsewhere."""
    mode: str = metadata.get("fake", "ok")
    provider = agent_id.split("-")[0]  # slots are <provider>-<n>[-<tag>]
    if metadata.get("fake_provider", provider) != provider:
        mode = "ok"  # misbehaves on one provider only
    if metadata.get("fake_model", model) != model:
        mode = "ok"  # or on one model only
    if mode.endswith("_once"):
        mode = "ok" if resumed else mode.removesuffix("_once")
    return mode


async def change(metadata: dict[str, Any], mode: str, task_id: str, note: str, text: str) -> None:
    """What the run does to its repository: its files, commits and leftovers, as asked."""
    if mode == "plant":
        await anyio.Path(".plant").write_text("")
    if "fake_wait_file" in metadata:  # written into its repository by the test
        await anyio.to_thread.run_sync(wait_file, metadata["fake_wait_file"])
    files = dict(metadata.get("fake_files", {}))
    for n, line in enumerate(metadata.get("fake_run", [])):  # its output is committed
        files[f"ran-{n}.txt"] = await anyio.to_thread.run_sync(shell, line)
    if re.search(r"returned: (a check failed|the required check|\S+ requested changes)", text):
        files.update(metadata.get("fake_fix", {}))
    for name, content in files.items():
        await anyio.Path(name).parent.mkdir(parents=True, exist_ok=True)
        await anyio.Path(name).write_text(content)
    for name in metadata.get("fake_delete", []):
        await anyio.Path(name).unlink(missing_ok=True)
    onto = re.search(r"in your repository as branch '([^']+)'", text)
    if onto:  # a returned conflict: bring the target in, keeping both sides
        await anyio.to_thread.run_sync(resolve, onto.group(1))
    if mode == "state":
        state = dict(metadata.get("fake_state", {}))
        links = dict(metadata.get("fake_state_links", {}))
        await anyio.to_thread.run_sync(force, state, links)
    if mode == "unverified":
        await anyio.to_thread.run_sync(unverified, task_id)
    elif mode != "nochange":
        shared = metadata.get("fake_shared") or ("shared.txt" if mode == "shared" else None)
        # Told its messages would close issues, it writes plain ones, as a model would.
        told = "messages would close issues" in text
        message = None if told else metadata.get("fake_message")
        await anyio.to_thread.run_sync(commit, task_id, note, shared, message)
    if mode == "undo":  # its commits change nothing in the end
        await anyio.to_thread.run_sync(git_out, "revert", "--no-edit", "HEAD")
    if mode == "forge":
        secret = metadata.get("fake_secret", "")
        await anyio.to_thread.run_sync(
            forge, metadata["fake_forge"], metadata["fake_target"], secret
        )
    if mode == "plant":
        await anyio.to_thread.run_sync(plant, metadata["fake_marker"])
    if mode == "dirty":
        await anyio.Path("notes.txt").write_text("not committed\n")
    for name, content in metadata.get("fake_leave", {}).items():
        await anyio.Path(name).parent.mkdir(parents=True, exist_ok=True)
        await anyio.Path(name).write_text(content)
    await anyio.to_thread.run_sync(hostile, metadata.get("fake_hostile", []))


async def work(text: str, model: str, server: Server) -> int:
    if "You review task" in text:
        return await review(text, server)
    if "# Goal" in text:
        return await plan(text, server)
    found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
    assert found is not None, "no task in the prompt"
    task_id, token = found.groups()
    agent = re.search(r"You are (\S+)\. Task", text)
    agent_id = agent.group(1) if agent else "fake"
    held = {"task_id": task_id, "lease_token": token}
    emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "model": model})
    async with connect(server) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            answer = await client.call_tool(tool, arguments)
            assert not answer.is_error, answer
            return answer.structured_content or {}

        task = await call("task_get", task_id=task_id)
        metadata = {**task.get("metadata", {}), **asked_of(task.get("description") or "")}
        resumed = "An earlier attempt got this far" in text
        mode = mode_of(metadata, agent_id, model, resumed)
        USED.update(metadata.get("fake_usage", {}))
        if mode == "denied":  # the CLI would not let it run what it needed
            result(False, "I could not run the tests: permission denied.", denied=("Bash",))
            return 0
        if mode in ERRORS:
            status, reason, text = ERRORS[mode]
            result(True, text, status, reason)
            return 1
        if mode == "said":  # a hostile model's words, where a person will read them
            said = metadata.get("fake_said", "")
            await call("checkpoint", summary=said, **held)
            result(True, said)
            return 1
        if "fake_wait" in metadata:
            waited = await wait_for(metadata["fake_wait"], call, held)
            if waited == "paused":
                result(False, f"stopped {task_id}: a person paused it")
                return 0
            if waited == "timeout":
                result(True, f"waited {WAIT_SECONDS:.0f} s for {metadata['fake_wait']}")
                return 1
        if mode == "ask":
            answered = re.search(r"^- answer from \S+ at \S+: (.*)$", text, re.MULTILINE)
            if answered is None:
                await call("checkpoint", summary="needs a person's choice", **held)
                await call("ask_person", question=metadata.get("fake_question", "which?"), **held)
                result(False, f"asked a person about {task_id}")
                return 0
            metadata["fake_files"] = {**metadata.get("fake_files", {}), "answer.txt": answered[1]}
        await call("checkpoint", summary=f"half of {task_id}", progress=50,
                   next_steps="write the file", **held)  # fmt: skip
        if mode == "longline":
            sys.stdout.write("x" * (2 << 20))
            sys.stdout.flush()
            if not metadata.get("fake_longline_end"):
                await anyio.sleep(3600)
            sys.stdout.write("\n")
        if mode in ("forge_output", "forge_output_fail"):
            inherit = bool(metadata.get("fake_forge_inherit"))
            said = await anyio.to_thread.run_sync(
                start_forger, metadata["fake_forge_line"], inherit
            )
            await call("checkpoint", summary=f"forger: {said}", **held)
            if mode == "forge_output_fail":
                result(True, "the tests would not pass")
                let_forgers_write()
                return 1
        if mode == "give_up":
            reason = "cannot finish: the task needs a person's decision"
            await call("plan_update", status="failed", reason=reason, **held)
            result(False, f"gave {task_id} up")
            return 0
        if mode == "scatter":
            await anyio.to_thread.run_sync(scatter, task_id)
            await call("checkpoint", summary="scattered", **held)
            await anyio.sleep(3600)
        if mode == "hang":
            await anyio.sleep(3600)
        if mode == "crash":
            return 3  # no result line: a crash
        if mode == "hog":  # allocates in its own process until the kernel stops it
            await anyio.to_thread.run_sync(hog)
            result(True, f"held {HOG_CHUNKS * HOG_CHUNK_MB} MB and was never stopped")
            return 1
        number = re.search(r"\(attempt (\d+)\)", text)
        note = f"{agent_id}, attempt {number.group(1) if number else 1}"
        if mode == "probe":
            await probe(client, call, metadata["fake_probe"], held, agent_id, model)
        if mode == "moves":
            tried_moves = await moves(client, held, note)
            emit({"type": "wvo_fake_report", "task_id": task_id, "moves": tried_moves})
            result(False, f"tried {len(tried_moves)} moves on {task_id}")
            return 0
        await change(metadata, mode, task_id, note, text)
        finish = re.search(r"Finish with plan_update: (\w+) when", text)
        to = finish.group(1) if finish else "done"
        answer = await client.call_tool("plan_update", {"status": to, **held})
        if answer.is_error:  # e.g. the verification gate refused done: say so and stop
            text = answer.content[0].text if answer.content else ""
            result(False, f"could not finish {task_id}: {text[:300]}")
            return 0
    after = " (after review)" if "A reviewer asked for changes" in text else ""
    result(False, f"done {task_id}" + (" (resumed)" if resumed else "") + after)
    let_forgers_write()
    return 0


# The forger: started by the worker as its shell tool starts a command, it reaches for the
# CLI's output and says on stderr what it could do; once the CLI has written its last line
# (its stdin closes), it writes its own there.
FORGER = """
import errno, os, sys
cli, line, inherited = int(sys.argv[1]), sys.argv[2].encode() + b"\\n", sys.argv[3] == "1"
try:
    out = 1 if inherited else os.open(f"/proc/{cli}/fd/1", os.O_WRONLY)
    said = "opened"
except OSError as exc:
    out, said = None, "refused: " + errno.errorcode.get(exc.errno or 0, str(exc.errno))
print(said, file=sys.stderr, flush=True)
sys.stdin.read()
if out is not None:
    os.write(out, line)
"""
FORGERS: list[subprocess.Popen[str]] = []


def start_forger(line: str, inherited: bool) -> str:
    """The forger started beside this CLI; what it says it could do."""
    forger = subprocess.Popen(
        [sys.executable, "-c", FORGER, str(os.getpid()), line, "1" if inherited else "0"],
        stdin=subprocess.PIPE,
        stdout=None if inherited else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    FORGERS.append(forger)
    assert forger.stderr is not None
    return forger.stderr.readline().strip()


def let_forgers_write() -> None:
    """After this CLI's last line: each forger writes its own, then ends."""
    for forger in FORGERS:
        forger.communicate(timeout=30)


SLEEPER = "import time; time.sleep(600)"
DAEMON = (
    "import os, subprocess, sys; os.setsid(); "
    "subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL, start_new_session=True); os._exit(0)"
)


def scatter(task_id: str) -> None:
    """Three sleepers that outlive this run unless something ends them."""
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
             "stderr": subprocess.DEVNULL}  # fmt: skip
    sleeper = [sys.executable, "-c", SLEEPER, f"wvo-scatter-{task_id}"]
    subprocess.Popen([*sleeper, "group"], **quiet)  # type: ignore[call-overload]
    subprocess.Popen([*sleeper, "session"], start_new_session=True, **quiet)  # type: ignore[call-overload]
    subprocess.run([sys.executable, "-c", DAEMON, *sleeper, "daemon"], check=True, **quiet)  # type: ignore[call-overload]


# Newer than any release init requires of claude or codex.
FAKE_VERSION = "99.0.0"


def main() -> int:
    global CODEX
    if sys.argv[1:] == ["--version"]:  # as `wvo-mcp init` asks a CLI on PATH
        print(f"{FAKE_VERSION} (wvo-mcp fake worker)")
        return 0
    text = sys.stdin.read()  # the prompt: it carries the lease token, so never argv
    if sys.argv[1:2] == ["exec"]:  # codex exec --json ... -
        CODEX = True
        parser = argparse.ArgumentParser()
        parser.add_argument("exec")
        parser.add_argument("--model", required=True)
        parser.add_argument("-c", action="append", default=[])
        parser.add_argument("--cd", "--sandbox")
        for flag in ("--json", "--ephemeral", "--skip-git-repo-check"):
            parser.add_argument(flag, action="store_true")
        args, _ = parser.parse_known_args()
        home = Path(os.environ["CODEX_HOME"])
        config = tomllib.loads((home / "config.toml").read_text())["mcp_servers"]["wvo"]
        server = Server(config["url"], os.environ[config["bearer_token_env_var"]])
        emit({"type": "thread.started", "thread_id": "fake"})
        emit({"type": "turn.started"})
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("-p", action="store_true", required=True)
        parser.add_argument("--mcp-config", required=True)
        parser.add_argument("--model", required=True)
        args, _ = parser.parse_known_args()
        config = json.loads(Path(args.mcp_config).read_text())["mcpServers"]["wvo"]
        bearer = config["headers"]["Authorization"].removeprefix("Bearer ")
        server = Server(config["url"], bearer)
    return anyio.run(work, text, args.model, server)


if __name__ == "__main__":
    sys.exit(main())
