"""A stand-in ACP agent for the tests and benchmarks, with modes that misbehave.

A stand-in ACP agent (`kind: acp`), for the tests and the benchmark: it speaks the Agent
Client Protocol on its stdio, as Gemini CLI or OpenCode do, and works its task as the fake
worker (fake.py) does, through the MCP server its session names.

On `session/prompt` it sends its plan, a tool call (start and end) for each wvo-mcp tool it
calls, asks permission to edit (metadata.fake_acp_ask: the title of what it asks; refused,
it ends its turn without working), and its last words. `session/cancel` stops its turn
(`cancelled`); a later prompt in the session carries a person's words, which it checkpoints
(`heard: …`) before working the task again from that prompt alone: it keeps nothing of the
cancelled turn, as Gemini CLI keeps nothing of one cancelled mid-answer. Failures the fake
worker reports (rate limit, context, auth) are the prompt's JSON-RPC error, as real agents
answer.

Hostile modes (metadata.fake): acp_flood (metadata.fake_flood session updates, 20,000 by
default, before it works), acp_longline (a 2 MiB line on its stdout, then works),
acp_outside (asks permission to write metadata.fake_outside, a path outside its sandbox,
tries, and checkpoints `outside: wrote` or `outside: refused: <errno>`).
"""

import asyncio
import contextlib
import errno
import os
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import acp
from acp import schema

from wvo_mcp.autopilot import fake, fake_probe

FLOOD = 20_000
CONNECT = fake.connect  # the fake worker's own, before main() traces it


class Traced:
    """An MCP client whose tool calls are told to the ACP client as tool calls."""

    def __init__(self, client: Any, agent: "FakeAgent") -> None:
        self.client, self.agent = client, agent

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        call_id = f"call-{self.agent.calls}"
        self.agent.calls += 1
        await self.agent.update(
            schema.ToolCallStart(
                tool_call_id=call_id, title=f"wvo: {name}", kind="other",
                status="in_progress", session_update="tool_call",
            )
        )  # fmt: skip
        answer = await self.client.call_tool(name, arguments)
        status = "failed" if answer.is_error else "completed"
        await self.agent.update(
            schema.ToolCallProgress(
                tool_call_id=call_id, status=status, session_update="tool_call_update"
            )
        )
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class FakeAgent:
    def __init__(self) -> None:
        self.conn: Any = None
        self.server: fake.Server | None = None
        self.session = "fake-session-1"
        self.prompts = 0
        self.calls = 0
        self.turn: asyncio.Task[int] | None = None
        self.raw: asyncio.StreamWriter | None = None  # its stdout, as the protocol writes it

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def update(self, update: Any) -> None:
        await self.conn.session_update(session_id=self.session, update=update)

    async def initialize(self, protocol_version: int, **_: Any) -> schema.InitializeResponse:
        return schema.InitializeResponse(
            protocol_version=acp.PROTOCOL_VERSION,
            agent_capabilities=schema.AgentCapabilities(
                mcp_capabilities=schema.McpCapabilities(http=True)
            ),
            agent_info=schema.Implementation(name="fake-acp", version=fake.FAKE_VERSION),
        )

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> schema.NewSessionResponse:
        http = [s for s in mcp_servers or [] if isinstance(s, schema.HttpMcpServer)]
        assert http, "no MCP server over HTTP in session/new"
        bearer = next(h.value for h in http[0].headers if h.name == "Authorization")
        self.server = fake.Server(http[0].url, bearer.removeprefix("Bearer "))
        os.chdir(cwd)
        return schema.NewSessionResponse(session_id=self.session)

    async def cancel(self, session_id: str, **_: Any) -> None:
        if self.turn is not None:
            self.turn.cancel()

    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> schema.PromptResponse:
        text = "".join(b.text for b in prompt if isinstance(b, schema.TextContentBlock))
        assert self.server is not None, "prompt before session/new"
        self.prompts += 1
        if self.prompts > 1:  # a person's words first, sent after the driver cancelled a turn
            words = text.split("\n\n", 1)[0]
            await self.heard(text, words)
            if re.search(r"^- drain: ", words, re.MULTILINE):  # checkpointed; stops as told
                return schema.PromptResponse(stop_reason="end_turn")
        self.turn = asyncio.ensure_future(self.work(text))
        try:
            code = await self.turn
        except asyncio.CancelledError:
            return schema.PromptResponse(stop_reason="cancelled")
        if fake.FAILED is not None:
            said, fake.FAILED = fake.FAILED, None
            raise acp.RequestError(-32603, said)
        return schema.PromptResponse(stop_reason="end_turn" if code == 0 else "refusal")

    async def heard(self, text: str, words: str) -> None:
        assert self.server is not None
        held = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert held is not None, "no task in the prompt after a cancel"
        async with CONNECT(self.server) as client:
            for line in re.findall(r"^- (.+)$", words, re.MULTILINE):
                await client.call_tool(
                    "checkpoint",
                    {"task_id": held[1], "lease_token": held[2], "summary": f"heard: {line}"},
                )

    async def work(self, text: str) -> int:
        assert self.server is not None
        await self.update(
            schema.AgentPlanUpdate(
                entries=[
                    schema.PlanEntry(content=step, priority="medium", status="pending")
                    for step in ("read the task", "change the code", "submit it")
                ],
                session_update="plan",
            )
        )
        metadata = await self.metadata(text)
        mode = metadata.get("fake", "ok")
        if mode == "acp_flood":
            for n in range(int(metadata.get("fake_flood", FLOOD))):
                await self.update(
                    schema.ToolCallProgress(
                        tool_call_id=f"flood-{n}", status="in_progress",
                        session_update="tool_call_update",
                    )
                )  # fmt: skip
        if mode == "acp_longline":  # through the protocol's own writer: whole, in turn
            assert self.raw is not None
            self.raw.write(b"x" * (2 << 20) + b"\n")
            await self.raw.drain()
        asked = metadata.get("fake_acp_ask")
        if asked or mode == "acp_outside":
            target = metadata.get("fake_outside", "")
            title = asked or f"write {target}"
            if not await self.allowed(title, target):
                await self.say(f"permission refused: {title}; I stop here")
                return 0
            if mode == "acp_outside":
                await self.checkpoint(text, f"outside: {write_outside(target)}")
        code = await fake.work(text, "fake-acp", self.server)
        await self.say(fake.LAST or "done")
        return code

    async def metadata(self, text: str) -> dict[str, Any]:
        held = re.search(r"task_id '([^']+)'", text)
        if held is None or self.server is None:
            return {}
        async with CONNECT(self.server) as client:
            task = (await client.call_tool("task_get", {"task_id": held[1]})).structured_content
        task = task or {}
        return {**task.get("metadata", {}), **fake.asked_of(task.get("description") or "")}

    async def checkpoint(self, text: str, summary: str) -> None:
        held = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert held is not None and self.server is not None
        async with CONNECT(self.server) as client:
            await client.call_tool(
                "checkpoint", {"task_id": held[1], "lease_token": held[2], "summary": summary}
            )

    async def allowed(self, title: str, path: str) -> bool:
        options = [
            schema.PermissionOption(option_id="yes", name="Allow", kind="allow_once"),
            schema.PermissionOption(option_id="no", name="Reject", kind="reject_once"),
        ]
        call = schema.ToolCallUpdate(
            tool_call_id="ask-1", title=title, kind="edit",
            locations=[schema.ToolCallLocation(path=path)] if path else None,
        )  # fmt: skip
        answer = await self.conn.request_permission(
            session_id=self.session, tool_call=call, options=options
        )
        outcome = answer.outcome
        return isinstance(outcome, schema.AllowedOutcome) and outcome.option_id == "yes"

    async def waiting(self) -> None:
        await self.update(
            schema.ToolCallProgress(
                tool_call_id="wait", title="waiting", status="in_progress",
                session_update="tool_call_update",
            )
        )  # fmt: skip

    async def say(self, text: str) -> None:
        await self.update(
            schema.AgentMessageChunk(
                content=schema.TextContentBlock(text=text, type="text"),
                session_update="agent_message_chunk",
            )
        )


def write_outside(path: str) -> str:
    try:
        with open(path, "w") as out:
            out.write("written by a worker\n")
    except OSError as exc:
        return "refused: " + errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "wrote"


@contextlib.asynccontextmanager
async def traced(agent: FakeAgent, server: fake.Server) -> AsyncIterator[Any]:
    async with CONNECT(server) as client:
        yield Traced(client, agent)


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        print(f"{fake.FAKE_VERSION} (wvo-mcp fake ACP agent)")
        return 0
    agent = FakeAgent()
    fake.ACP = True
    fake_probe.OUT = sys.stderr  # stdout is the protocol's
    fake.connect = lambda server: traced(agent, server)
    fake.WAIT_BEAT = agent.waiting
    asyncio.run(serve(agent))
    return 0


async def serve(agent: FakeAgent) -> None:
    reader, agent.raw = await acp.stdio_streams(limit=64 << 20)
    await acp.run_agent(agent, agent.raw, reader)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
