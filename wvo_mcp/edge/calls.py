"""The wrapper around every tool call: the caller, our errors as tool errors, the answer.

How a tool is called: who the caller is, our errors as tool errors an agent can act on,
the request span annotated, and the registered tools shaped (WVO_TOOLS, lean schemas).
A person's notes (a tell, a redirect) reach a holder here, with its call's answer
(`tool_call`); an ACP worker's driver also reads them and prompts its agent again
(`autopilot/acp_driver.py`).

Carries out `rules/identity.py`."""

import copy
import functools
import inspect
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

import anyio
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Icon, ToolAnnotations
from pydantic import BaseModel

from wvo_mcp.config import Settings
from wvo_mcp.edge import access, held_back, protocol, toolset
from wvo_mcp.errors import WvoError
from wvo_mcp.models import Asked, ClaimResult, Note, lean
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity
from wvo_mcp.telemetry import Telemetry, annotate

if TYPE_CHECKING:
    from wvo_mcp.edge.hot_calls import HotCalls

log = logging.getLogger(__name__)
NOTES_GRACE_S = 2.0  # a committed call's lookup of a person's notes, cancelled or not
P = ParamSpec("P")
R = TypeVar("R")


class Server(MCPServer[Orchestrator]):
    """The SDK's server over our orchestrator, whose tools publish no outputSchema. The models
    never see one (Claude Code drops it); the SDK's client checks every result against it in
    pure-Python jsonschema (0.1-0.4 ms a call, 12 ms to compile per tool) and the server once
    more, and deriving them is a fifth of start-up's server build. What every tool answers is
    its return type in models/, which the suite checks replies against (tests/security)."""

    # The loop's own lane (hot_calls.py) over the tool-call table build_server installs.
    hot: "HotCalls | None" = None

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        # Unstructured to the SDK; the structured content is ours (_answer).
        structured = False if structured_output is None else structured_output
        # What the SDK derives from a tool's function (its argument model and JSON schema,
        # the larger part of building a server) depends on its code and signature alone, not
        # on what the closure holds: derived once a process, and for a forked server by the
        # warm process's rehearsal.
        key = (
            inspect.unwrap(fn).__code__, str(inspect.signature(fn)), name, title, description,
            repr(annotations), repr(icons), repr(meta), structured,
        )  # fmt: skip
        tools = self._tool_manager._tools
        known = _DERIVED.get(key)
        if known is not None and known.name not in tools:
            parameters = copy.deepcopy(known.parameters)
            tools[known.name] = known.model_copy(update={"fn": fn, "parameters": parameters})
            return
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured)
        if known is None:
            made = tools[name or fn.__name__]
            parameters = copy.deepcopy(made.parameters)
            _DERIVED[key] = made.model_copy(update={"fn": _derived_only, "parameters": parameters})


_DERIVED: dict[tuple[object, ...], "Tool"] = {}


def _derived_only() -> None:
    """A derived tool's function until a server's own replaces it."""


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def orchestrator_of(ctx: Context) -> Orchestrator:
    """The orchestrator the lifespan opened for this connection."""
    return cast(Orchestrator, ctx.request_context.lifespan_context)


class Callers:
    """Who calls a tool: over stdio the one agent the server acts as (identity.OneAgent),
    over HTTP the bearer token's holder."""

    def __init__(self, settings: Settings, *, over_http: bool) -> None:
        self.settings = settings
        self.over_http = over_http
        self.one_agent = identity.OneAgent(settings.agent_id)

    def agent(self, ctx: Context, agent_id: str | None, *, claims: bool = False) -> str:
        """The caller's id (identity.OneAgent): reserved names and a switch are refused."""

        def default() -> str:
            params = getattr(ctx.session, "client_params", None)
            client = params.client_info.name if params is not None else "agent"
            return identity.default_name(client, os.getpid())

        if self.over_http:  # many callers: the token says who
            return access.acting_agent(agent_id, lambda: self.settings.agent_id or default())
        return self.one_agent.resolve(agent_id, default, claims=claims)

    def holder(self, ctx: Context, agent_id: str | None) -> str | None:
        """The agent a call's notes are for (services/notes.py): never a person; None
        before a stdio server's agent has a name (it holds nothing yet)."""
        if not self.over_http:
            return self.one_agent.name
        caller = access.current()
        if caller is None:  # loopback --no-auth: whoever the call says
            return agent_id or self.settings.agent_id
        return None if caller.role == "person" else caller.name

    def seen_as(self, ctx: Context, agent_id: str | None) -> str:
        """For telemetry: who the caller is, never raising."""
        if self.over_http:
            caller = access.current()
            return caller.name if caller is not None else agent_id or "unknown"
        return self.one_agent.name or agent_id or "unknown"


class Traced(Protocol):
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...


def _error_code(exc: WvoError) -> str:
    """LeaseLost -> lease_lost: the outcome recorded in telemetry."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def tool_call(
    telemetry: Telemetry,
    agent_of: Callable[[Context, str | None], str],
    holder_of: Callable[[Context, str | None], str | None] = lambda ctx, agent_id: None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap a tool: our exceptions become MCP tool errors an agent can act on (the one place
    this happens), the SDK's request span gets the task, the agent and the outcome, and
    what a person left for the caller's held tasks comes with the answer (`holder_of`)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            outcome = "ok"
            result: object = None
            ctx, agent_id = kwargs.get("ctx"), kwargs.get("agent_id")
            named = agent_id if isinstance(agent_id, str) else None
            try:
                result = await fn(*args, **kwargs)
                if isinstance(result, ClaimResult):
                    if not result.claimed:
                        outcome = result.reason or "not_claimed"
                    elif result._took_over_expired:
                        telemetry.lease_expiries(1)
                elif isinstance(nxt := getattr(result, "next", None), ClaimResult) and (
                    nxt._took_over_expired  # plan_update's claim_next
                ):
                    telemetry.lease_expiries(1)
                told: list[Note] = []
                if isinstance(ctx, Context) and isinstance(result, BaseModel):
                    holder = _notes_owed(holder_of(ctx, named), result)
                    if holder is not None:
                        # The call has committed: a stop now must not turn its answer into
                        # an error (the notes come with the next call if this is cut short).
                        # Entered only for a lookup: a shielded scope with a deadline is a
                        # timer set and cancelled, which every call would pay.
                        with anyio.move_on_after(NOTES_GRACE_S, shield=True):
                            told = await _notes_for(orchestrator_of(ctx), holder)
                return cast(R, _answer(result, told))
            except WvoError as exc:
                outcome = _error_code(exc)
                if fn.__name__ != "claim_task":  # held work's: a claim's is claim admission's
                    held_back.refused(access.own_agent(get_access_token()), exc)
                raise ToolError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                task_id = kwargs.get("task_id") or _task_of(result)
                annotate(
                    **{
                        "wvo.task_id": task_id if isinstance(task_id, str) else None,
                        "wvo.agent_id": agent_of(ctx, named) if isinstance(ctx, Context) else None,
                        "wvo.outcome": outcome,
                    }
                )
                telemetry.tool_call(fn.__name__, outcome, (time.perf_counter() - started) * 1000)

        return wrapper

    return decorate


def _notes_owed(holder: str | None, result: object) -> str | None:
    """The holder whose notes must be looked up for this answer, or None: none when the
    call's own transaction found none (a holder's write asks: services/notes.asking), or
    past capacity (a claim refused as busy costs no database round trip: they come with the
    next call)."""
    if holder is None or (isinstance(result, Asked) and result._no_notes_for == holder):
        return None
    if isinstance(result, ClaimResult) and result.reason == "busy":
        return None
    return holder


async def _notes_for(orchestrator: Orchestrator, holder: str) -> list[Note]:
    """The notes due to `holder`; none when the lookup fails (the call itself stood)."""
    try:
        return await orchestrator.notes_for(holder)
    except Exception:  # given with the next call instead: the note stays undelivered
        log.warning("notes for %s not delivered this call", holder, exc_info=True)
        return []


def wire(result: BaseModel) -> object:
    """A tool's answer as it goes on the wire, with no notes (edge/http_claims.py)."""
    return _answer(result, [])


def _answer(result: object, told: list[Note]) -> object:
    """What the agent receives: lean structured content (models.lean) and a compact text
    copy of it for clients that show the text instead (the model reads the structured
    content: MCP_SDK_NOTES). A person's notes go under `from_a_person`, and only theirs: an
    earlier holder's question is an agent's words, under `asked_by_an_agent`."""
    if not isinstance(result, BaseModel):
        return result
    content = lean(result)
    asked = [n.model_dump() for n in told if n.an_agents]
    persons = [n.model_dump() for n in told if not n.an_agents]
    if persons:
        content["from_a_person"] = persons
    if asked:
        content["asked_by_an_agent"] = asked
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    # The wire form, which tool_calls.py hands on as it is.
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": content,
        "isError": False,
        "resultType": "complete",  # the 2026-07-28 revision's; older ones drop it
    }


def _task_of(result: object) -> str | None:
    if isinstance(result, ClaimResult):
        return result.task.id if result.task is not None else None
    task_id = getattr(result, "task_id", None)
    return task_id if isinstance(task_id, str) else None


class ProtocolEdge:
    """Server middleware where the SDK's answers fall short of the protocol:
    - `prompts/get` of an unknown prompt, or with an argument the prompt does not take, is
      refused as Invalid params (-32602) saying what is accepted, before the SDK's handler
      raises a bare ValueError (code 0, or -32603, and a logged traceback);
    - `server/discover` over HTTP lists every revision the server speaks, as the
      unsupported-version error does (the SDK lists the per-request ones only)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "prompts/get" and isinstance(ctx.params, Mapping):
            prompts = {
                p.name: [a.name for a in p.arguments or []]
                for p in await self.server.list_prompts()
            }
            name, arguments = ctx.params.get("name"), ctx.params.get("arguments")
            refused = protocol.prompt_refusal(name, arguments, prompts)
            if refused is not None:
                raise MCPError(INVALID_PARAMS, refused)
        result = await call_next(ctx)
        # Over HTTP (ctx.request set) every request may take either revision; a stdio
        # connection that served a per-request call takes no handshake any more, so the
        # SDK's answer (the per-request revisions) is the true one there.
        if ctx.method == "server/discover" and ctx.request is not None and isinstance(result, dict):
            return {**result, "supportedVersions": list(protocol.REVISIONS)}  # the wire form
        return result


def shape_tools(server: Server, spec: str) -> None:
    """Only the tools WVO_TOOLS asks for, with lean input schemas (toolset.py)."""
    tools = server._tool_manager.list_tools()
    wanted = toolset.chosen(spec, (t.name for t in tools))
    for tool in tools:
        # The HTTP-only tools are gated by role instead (toolset.role_allows).
        if tool.name not in wanted and tool.name not in toolset.HTTP_ONLY:
            server.remove_tool(tool.name)
            continue
        tool.parameters = toolset.lean(tool.parameters)
        tool.description = toolset.flat(tool.description)
        if tool.annotations is not None:
            # Claude Code shows annotations.title, not the tool's own title (2.1.197).
            tool.annotations = tool.annotations.model_copy(update={"title": tool.title})
        if tool.name in toolset.ALWAYS_LOAD:
            tool.meta = {**(tool.meta or {}), "anthropic/alwaysLoad": True}


def refuse_unknown_arguments(server: Server) -> None:
    """The SDK ignores unknown top-level arguments, so a misspelt `lease_second` would fall
    back to the default in silence; make every tool refuse them (and say so in its schema)."""
    for tool in server._tool_manager.list_tools():
        model = tool.fn_metadata.arg_model
        if model.model_config.get("extra") != "forbid":  # a model derived before is already
            model.model_config["extra"] = "forbid"
            model.model_rebuild(force=True)
        tool.parameters["additionalProperties"] = False
