"""Drives an ACP coding agent inside a worker's sandbox and reports what it does as lines.

The driver of an ACP worker (providers file `kind: acp`): it runs inside the worker's
sandbox, beside the agent it drives, as the run's command (worker_config.argv).

It starts the agent (the Agent Client Protocol over its stdio), opens one session in the
worker's repository with wvo-mcp as its MCP server (over HTTP, the run token in a header),
and prompts it with the worker's prompt. What the agent does comes back as lines the
autopilot reads (worker_output.AcpStream) and shows live: its plan, its tool calls and their
status, what it says, each permission it asked and the answer. The last line, `acp_end`,
says how the turn ended.

- **Permissions** are answered by the providers file's `permissions`: `allow` (the
  sandbox is the boundary, so whatever the agent asks happens inside it), `deny`, or `ask`:
  a person, through the inbox (ask_person). The run then ends, its task waiting in blocked;
  a later run is allowed what the person's answer allowed.
- **A person's hand without a kill.** Every `poll_seconds` it reads its task (task_get, which
  also brings a person's notes): on a note it cancels the turn (`session/cancel`) and prompts
  again with the person's words, and with all the agent needs to go on should it have lost
  the cancelled turn (Gemini CLI drops a turn cancelled mid-answer, its first prompt with
  it): its task and lease, its latest checkpoint and the first prompt. On a pause it cancels
  and ends. (The other path: a CLI worker's notes come with its calls' answers,
  `edge/calls.py`, and its pause ends it from outside, `autopilot/worker_process.py`.)
- **Bounded.** A message of the agent over MESSAGE_BYTES is dropped unread; message and
  thought chunks are written a line per run of them, each field cut to TEXT_CHARS.

Nothing here is trusted: the agent shares its sandbox and can rewrite this process. Usage is
never taken from here (the run's meter counts it), nor anything the landing gate checks.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import acp
from acp import schema

from wvo_mcp.autopilot import mcp_client
from wvo_mcp.autopilot.mcp_client import Client
from wvo_mcp.rules.acp_agents import POLL_SECONDS, POLL_SECONDS_RANGE
from wvo_mcp.rules.text import fenced, plain, shown

TEXT_CHARS = 2000  # of any one field of a line
MESSAGE_BYTES = 8 << 20  # an ACP message may carry a file; beyond this it is dropped
HELD = re.compile(r"task_id '([^']+)', lease_token '([^']+)'")
Policy = Literal["allow", "deny", "ask"]
PREFER_ALLOW = ("allow_once", "allow_always")
PREFER_REJECT = ("reject_once", "reject_always")
# The driver's own question to a person: what the agent asks, after it.
ASKING = "The agent working this task asks permission to: "
ANSWER = 'Answer "allow" to let it (now and in later attempts); anything else refuses.'


@dataclass(frozen=True)
class Config:
    """`.wvo/acp.json` in the run's home, written by the autopilot (worker_config.acp_json)."""

    agent: list[str]  # the agent's command line
    cwd: str  # the worker's repository
    mcp_url: str
    mcp_name: str
    permissions: Policy
    session_meta: dict[str, Any] = field(default_factory=dict)  # session/new's `_meta`
    poll_seconds: float = POLL_SECONDS

    @staticmethod
    def read(path: Path) -> "Config":
        found = json.loads(path.read_text())
        return Config(
            agent=[str(a) for a in found["agent"]],
            cwd=str(found["cwd"]),
            mcp_url=str(found["mcp_url"]),
            mcp_name=str(found["mcp_name"]),
            permissions=found["permissions"]
            if found.get("permissions") in ("deny", "ask")
            else "allow",
            session_meta=dict(found.get("session_meta") or {}),
            poll_seconds=_poll_seconds(found.get("poll_seconds")),
        )


def _poll_seconds(given: object) -> float:
    """The worker's poll_seconds as the providers file allows it, else POLL_SECONDS."""
    low, high = POLL_SECONDS_RANGE
    if isinstance(given, int | float) and not isinstance(given, bool) and low <= given <= high:
        return float(given)
    return POLL_SECONDS


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def cut(value: object) -> str:
    return value[:TEXT_CHARS] if isinstance(value, str) else ""


@dataclass
class Watcher:
    """The client side the agent calls: session updates and permission requests."""

    policy: Policy
    said: list[str] = field(default_factory=list)  # the agent's message chunks, unwritten
    thought: list[str] = field(default_factory=list)
    last_message: str = ""
    allowed: set[str] = field(default_factory=set)  # what a person's answers allowed
    # Policy ask: puts a question to a person (None: no task to ask on, so refused).
    ask: Callable[[str], Awaitable[None]] | None = None
    asked: str = ""  # what it asked: the run ends
    asking: asyncio.Event = field(default_factory=asyncio.Event)  # asked: cancel the turn

    def flush(self) -> None:
        for kind, parts in (("message", self.said), ("thought", self.thought)):
            if parts:
                text = "".join(parts)
                if kind == "message":
                    self.last_message = text[-8000:]
                emit({"type": "acp", "event": kind, "text": cut(text)})
                parts.clear()

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        if isinstance(update, schema.AgentMessageChunk | schema.AgentThoughtChunk):
            content = update.content
            if isinstance(content, schema.TextContentBlock):
                chunks = self.said if isinstance(update, schema.AgentMessageChunk) else self.thought
                chunks.append(content.text)
                if sum(len(c) for c in chunks) > TEXT_CHARS:
                    self.flush()
            return
        self.flush()
        if isinstance(update, schema.AgentPlanUpdate):
            entries = [{"content": cut(e.content), "status": e.status} for e in update.entries]
            emit({"type": "acp", "event": "plan", "entries": entries[:50]})
        elif isinstance(update, schema.ToolCallStart | schema.ToolCallProgress):
            emit({
                "type": "acp", "event": "tool", "id": cut(update.tool_call_id),
                "title": cut(update.title), "kind": update.kind, "status": update.status,
            })  # fmt: skip

    async def request_permission(
        self,
        session_id: str,
        tool_call: schema.ToolCallUpdate,
        options: list[schema.PermissionOption],
        **_: Any,
    ) -> schema.RequestPermissionResponse:
        self.flush()
        # One line: the agent writes it, and a person reads it as the driver's question.
        title = " ".join(cut(tool_call.title or tool_call.kind or "an unnamed action").split())
        allow = self.policy == "allow" or title in self.allowed
        if self.policy == "ask" and not allow and self.ask is not None and not self.asked:
            self.asked = title
            await self.ask(f"{ASKING}{title}\n{ANSWER}")
            self.asking.set()
        # Once before always: each request is asked, and logged, again.
        wanted = PREFER_ALLOW if allow else () if self.asked else PREFER_REJECT
        chosen = next((o for kind in wanted for o in options if o.kind == kind), None)
        answer = chosen.kind if chosen else "asked a person" if self.asked else "cancelled"
        emit({
            "type": "acp", "event": "permission", "title": title, "kind": tool_call.kind,
            "answer": answer,
        })  # fmt: skip
        if chosen is None:
            return schema.RequestPermissionResponse(
                outcome=schema.DeniedOutcome(outcome="cancelled")
            )
        return schema.RequestPermissionResponse(
            outcome=schema.AllowedOutcome(option_id=chosen.option_id, outcome="selected")
        )

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise acp.RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


class Bounded:
    """NDJSON over the agent's stdio (acp's Transport), dropping any line over
    MESSAGE_BYTES unread: the library's own reader would grow without bound."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.dropped = 0

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        skipping = False
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError as over:
                # Past the limit the reader holds what it read: let it go, and the rest of
                # the line after it.
                await self.reader.readexactly(over.consumed)
                if not skipping:
                    self.dropped += 1
                    said = f"a message of the agent over {MESSAGE_BYTES} bytes"
                    emit({"type": "acp", "event": "dropped", "text": said})
                skipping = True
                continue
            if skipping:  # the end of the over-long line
                skipping = False
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()


@dataclass(frozen=True)
class Heard:
    """A task as its driver reads it."""

    paused: bool = False
    notes: list[str] = field(default_factory=list)  # a person's, each `kind: text`
    checkpoint: str = ""  # its latest, quoted, for a prompt after a cancelled turn


async def heard(client: Client, task_id: str, allowed: set[str] | None = None) -> Heard:
    """The task as it reads now; into `allowed`, what a person's answers to the driver's
    questions allowed."""
    answer = await client.call_tool("task_get", {"task_id": task_id})
    content = answer.structured_content or {}
    notes = [n for n in content.get("from_a_person") or [] if isinstance(n, dict)]
    asking = ""  # the task's notes, oldest first: each answer is to the question before it
    for note in content.get("notes") or []:
        text = str(note.get("text", "")) if isinstance(note, dict) else ""
        if note.get("kind") == "question":
            asking = text.removeprefix(ASKING).split("\n")[0] if text.startswith(ASKING) else ""
        elif note.get("kind") == "answer" and asking and allowed is not None:
            if text.strip().lower() == "allow":
                allowed.add(asking)
            asking = ""
    said = [f"{n.get('kind', 'note')}: {n.get('text', '')}" for n in notes]
    return Heard(bool(content.get("paused")), said, _checkpoint(content.get("latest_checkpoint")))


def _checkpoint(found: object) -> str:
    """A task's latest checkpoint as a prompt quotes it: an agent's words, fenced."""
    if not isinstance(found, dict) or not found.get("summary"):
        return ""
    progress = found.get("progress")
    left = str(found["summary"]) + (
        f"\n\nNext steps it left:\n{found['next_steps']}" if found.get("next_steps") else ""
    )
    who = plain(str(found.get("agent_id", "")), 100)
    return (
        f"Your task's latest checkpoint (checkpoint {found.get('seq')}, "
        f"{progress if progress is not None else '?'}%), in the words of {who}:\n"
        f"{fenced(shown(left))}"
    )


async def drive(config: Config, prompt: str, token: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "WVO_MCP_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        *config.agent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=config.cwd,
        limit=MESSAGE_BYTES,
        start_new_session=True,  # its own process group, ended as one
    )
    watcher = Watcher(config.permissions)
    assert process.stdout is not None and process.stdin is not None
    transport = Bounded(process.stdout, process.stdin)
    connection = acp.connect_to_agent(watcher, transport)  # type: ignore[arg-type]
    try:
        return await _session(connection, watcher, config, prompt, token)
    except acp.RequestError as exc:
        watcher.flush()
        detail = f": {json.dumps(exc.data, ensure_ascii=False)}" if exc.data else ""
        emit({"type": "acp_end", "error": cut(f"{exc}{detail}")})
        return 1
    except (ConnectionError, OSError) as exc:
        watcher.flush()
        emit({"type": "acp_end", "error": cut(f"the agent went away: {exc}")})
        return 1
    except Exception as exc:  # wvo-mcp unreachable, an answer it cannot read: said, ended
        watcher.flush()
        emit({"type": "acp_end", "error": cut(f"the driver failed: {exc!r}")})
        return 1
    finally:
        # The agent first, and all it started: its connection's reader waits on its output,
        # which a child of it may hold open (Codex's adapter is a launcher of its binary).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        await connection.close()


async def _session(
    connection: Any, watcher: Watcher, config: Config, prompt: str, token: str
) -> int:
    started = await connection.initialize(
        protocol_version=acp.PROTOCOL_VERSION,
        client_capabilities=schema.ClientCapabilities(
            fs=schema.FileSystemCapabilities(read_text_file=False, write_text_file=False),
            terminal=False,
        ),
        client_info=schema.Implementation(name="wvo-mcp", version="1"),
    )
    info = started.agent_info
    server = schema.HttpMcpServer(
        name=config.mcp_name,
        url=config.mcp_url,
        headers=[schema.HttpHeader(name="Authorization", value=f"Bearer {token}")],
        type="http",
    )
    try:
        session = await connection.new_session(
            cwd=config.cwd, mcp_servers=[server], **config.session_meta
        )
    except acp.RequestError as refused:
        method = _signed_in_by_env(started.auth_methods or [])
        if method is None:
            raise
        # It wants a sign-in first, and its key is in its environment (Codex's adapter).
        emit({"type": "acp", "event": "authenticate", "text": cut(f"{refused}; {method}")})
        await connection.authenticate(method_id=method)
        session = await connection.new_session(
            cwd=config.cwd, mcp_servers=[server], **config.session_meta
        )
    emit({
        "type": "acp", "event": "session", "session_id": cut(session.session_id),
        "agent": cut(f"{info.name} {info.version}" if info else ""),
    })  # fmt: skip
    held = HELD.search(prompt)
    async with contextlib.AsyncExitStack() as stack:
        client: Client | None = None
        if held:  # the small client the fake worker uses too: the SDK's cost 0.5 s of CPU
            client = await stack.enter_async_context(mcp_client.connect(config.mcp_url, token))
        text = prompt
        said: dict[str, int] | None = None  # what the agent says its turns used, if it does
        if client is not None and held is not None:
            watcher.ask = _asker(client, held)
            # What a person said since the last run (an answer among it) comes with the
            # first prompt, not as a cancel of it.
            found = await heard(client, held.group(1), watcher.allowed)
            if found.paused:
                emit({"type": "acp_end", "stop_reason": "cancelled", "paused": True,
                      "message": ""})  # fmt: skip
                return 0
            text += f"\n\n{_words(found.notes)}" if found.notes else ""
        first = text
        while True:
            turn = asyncio.ensure_future(
                connection.prompt(
                    session_id=session.session_id,
                    prompt=[schema.TextContentBlock(text=text, type="text")],
                )
            )
            found = await _watch(turn, connection, session.session_id, client, held, watcher,
                                 config.poll_seconds)  # fmt: skip
            answer = await turn
            watcher.flush()
            said = _said(answer.usage, said)
            if found.paused or watcher.asked or not found.notes or held is None:
                stop = answer.stop_reason
                emit({"type": "acp_end", "stop_reason": stop, "paused": found.paused,
                      "asked": bool(watcher.asked), "message": watcher.last_message,
                      **({"usage": said} if said is not None else {})})  # fmt: skip
                return 0 if stop == "end_turn" or found.paused or watcher.asked else 1
            emit({"type": "acp", "event": "told", "text": cut("; ".join(found.notes))})
            text = _again(found, held, first)


def _said(usage: schema.Usage | None, so_far: dict[str, int] | None) -> dict[str, int] | None:
    """The agent's word on its turns' tokens, added up: the run is charged it only where no
    meter stands in front of its model API (cached input counted as input: the word is the
    most it may have used)."""
    if usage is None:
        return so_far
    count = [usage.input_tokens, usage.cached_read_tokens or 0, usage.cached_write_tokens or 0]
    made = [usage.output_tokens, usage.thought_tokens or 0]
    total = so_far or {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": total["input_tokens"] + sum(max(0, n) for n in count),
            "output_tokens": total["output_tokens"] + sum(max(0, n) for n in made)}  # fmt: skip


def _words(notes: list[str]) -> str:
    return "A person's words on your task, under from_a_person:\n" + "\n".join(
        f"- {n}" for n in notes
    )


def _again(found: Heard, held: re.Match[str], first: str) -> str:
    """The prompt after a turn cancelled for a person's words: the words, then what the
    agent needs to go on whether it kept the cancelled turn or not (Claude Code's adapter,
    Codex's and OpenCode keep it; Gemini CLI drops one cancelled mid-answer, and its first
    prompt with it): its task and lease, its latest checkpoint, and that first prompt."""
    going_on = (
        "Your turn was cancelled for these words. Follow them, and go on with your task from "
        f"where you got to: task_id {held.group(1)!r}, lease_token {held.group(2)!r}, as "
        "before. What you did stands: your checkpoints, and the commits in your repository."
    )
    again = (
        "The prompt you started with follows again, in case the cancelled turn is gone from "
        "your context:"
    )
    where = [found.checkpoint] if found.checkpoint else []
    return "\n\n".join([_words(found.notes), going_on, *where, again, first])


def _asker(client: Client, held: re.Match[str]) -> Callable[[str], Awaitable[None]]:
    """Policy ask's question, put to a person on the task with its lease (ask_person: the
    task then waits in blocked, so the turn is cancelled and the run ends)."""

    async def ask(question: str) -> None:
        arguments = {"task_id": held.group(1), "lease_token": held.group(2), "question": question}
        await client.call_tool("ask_person", arguments)

    return ask


def _signed_in_by_env(methods: list[Any]) -> str | None:
    """The first of an agent's sign-in methods that its environment satisfies: a key in a
    variable (ACP's env_var method), never one that opens a browser or a terminal."""
    for method in methods:
        names = [v.name for v in getattr(method, "vars", None) or [] if not v.optional]
        if getattr(method, "type", None) == "env_var" and names and all(map(os.environ.get, names)):
            return str(method.id)
    return None


async def _watch(
    turn: "asyncio.Future[Any]",
    connection: Any,
    session_id: str,
    client: Client | None,
    held: re.Match[str] | None,
    watcher: Watcher,
    poll_seconds: float = POLL_SECONDS,
) -> Heard:
    """Until the turn ends: a pause, a person's notes or a question to a person cancel it
    (what was heard), looked for every `poll_seconds`."""
    asking = asyncio.ensure_future(watcher.asking.wait())
    try:
        while client is not None and held is not None:
            done, _ = await asyncio.wait({turn, asking}, timeout=poll_seconds,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if turn in done:
                return Heard()
            if asking in done:
                await connection.cancel(session_id=session_id)
                return Heard()
            found = await heard(client, held.group(1), watcher.allowed)
            if found.paused or found.notes:
                await connection.cancel(session_id=session_id)
                return found
        await asyncio.wait({turn})
        return Heard()
    finally:
        asking.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("agent_args", nargs="*", help="after --: more for the agent, last")
    args = parser.parse_args()
    prompt = sys.stdin.read()  # it carries the lease token: never argv
    token = os.environ.get("WVO_MCP_TOKEN", "")
    config = Config.read(args.config)
    config = dataclasses.replace(config, agent=[*config.agent, *args.agent_args])
    return asyncio.run(drive(config, prompt, token))


if __name__ == "__main__":
    sys.exit(main())
