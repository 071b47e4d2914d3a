"""Claims refused at the HTTP edge, before the SDK, from what the edge already knows.

Past capacity, and with clients that come back soon whatever they were told, refused claims
are most of what a server is sent. Through the SDK each costs a JSON-RPC model, a dispatch,
the tool's argument validation and a traced call, and refusals alone filled two cores
(issue 73). Here one costs a scan of the body, a parse of it (pydantic_core), the tool's
argument check, claim admission's arithmetic and a small JSON answer: the tool's own (`claims.busy`,
shaped as the SDK shapes it for the request's version), so a client cannot tell where it was
made.

A claim is an agent token's `tools/call` of `claim_task`, told from the parsed body (a byte
match alone would take a checkpoint whose summary says `"claim_task"` for one), acting as the
token's agent (an `agent_id` naming another, a run token, an operator or `--no-auth` go to
the SDK, which answers them as before). It comes after the token's check and rate
(Endpoint): a caller without a valid token gets 401 and learns nothing of the load, and the
check costs a cached lookup. Then:
- back before its time (rules/claim_admission.ClaimAdmission.early): held until then, at
  no CPU and in no in-flight place, at most HOLD_MAX_S, one claim an agent and a small body
  (HOLD_BODY_MAX, kept once); a longer wait, a larger body, or a second claim of the agent
  meanwhile, is answered busy with what is left of its time. A held claim whose client goes
  meanwhile is dropped (`Gone`): granted, it would hold a task for no one;
- claim admission refuses a claim now (full, its new holders spent, its claims would wait past
  their bound): busy, with its slot;
- the claims' own in-flight places are taken (Admission.claim_place): busy;
- else it goes on to the SDK in one of the claims' places, never in held work's.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import pydantic_core
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from starlette.responses import Response

from wvo_mcp.edge import calls, protocol
from wvo_mcp.edge.http_limits import Admission
from wvo_mcp.orchestrator import arrival
from wvo_mcp.rules.claim_admission import ClaimAdmission
from wvo_mcp.services import claims

# Held longer, a client's own timeout might end the call first (the SDK's is 30 s), and its
# claim could be granted to no one listening.
HOLD_MAX_S = 20.0
MAX_HOLDING = 10_000  # claims held at once (one an agent)
# A claim's body is a few hundred bytes; a held one keeps its body, outside the in-flight cap.
HOLD_BODY_MAX = 4096
NEEDLE = b'"claim_task"'


ENVELOPE = frozenset(("jsonrpc", "id", "method", "params"))


def claim_id(
    body: bytes, agent: str, accepts: Callable[[dict[str, Any]], bool] | None = None
) -> str | int | None:
    """The JSON-RPC id of `body` if it is a `tools/call` of `claim_task` acting as `agent`
    (no agent_id, null, or that one) with nothing the SDK would refuse (`accepts`: the
    tool's own argument check), else None (the SDK then reads it as any other)."""
    # Every other call: a scan or two (a name may be written with JSON's escapes).
    if NEEDLE not in body and b"\\u" not in body:
        return None
    try:
        found = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(found, dict) or found.get("jsonrpc") != "2.0" or found.keys() - ENVELOPE:
        return None
    params, ident = found.get("params"), found.get("id")
    if found.get("method") != "tools/call" or not isinstance(params, dict):
        return None
    if params.get("name") != "claim_task" or isinstance(ident, bool):
        return None
    given = params.get("arguments")
    arguments: Any = {} if given is None else given
    if not isinstance(arguments, dict) or arguments.get("agent_id") not in (None, agent):
        return None  # agent_id null is the token's agent, as the tool takes it
    if accepts is not None and not accepts(arguments):
        return None  # refused outright by the SDK, not told to come back
    return ident if isinstance(ident, str | int) else None


def busy(
    ident: str | int, agent: str, back: float, version: str = DEFAULT_NEGOTIATED_VERSION
) -> Response:
    """The tool's answer to a claim refused as busy, come back in `back` seconds, shaped for
    protocol `version` as the SDK shapes it (an older one has no resultType, the oldest no
    structuredContent)."""
    wire = cast(dict[str, Any], calls.wire(claims.busy(agent, back)))
    return Response(protocol.result_body(ident, wire, version), media_type="application/json")


class Gone(Exception):
    """The client of a held claim went before its time: nothing is answered, nothing done."""


async def stays(gone: Callable[[], Awaitable[object]] | None, seconds: float) -> bool:
    """Whether the client is still there after `seconds`: `gone` returns once it has left
    (uvicorn does not cancel a request's task when its client disconnects)."""
    if gone is None:
        await anyio.sleep(seconds)
        return True
    with anyio.move_on_after(seconds):
        await gone()
        return False
    return True


class EdgeClaims:
    """One process's claims at the edge: the agents whose early claim is held."""

    def __init__(
        self, admission: Admission, accepts: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        self.admission = admission
        self.holding: set[str] = set()
        self.accepts = accepts

    def claim_id(self, body: bytes, agent: str) -> str | int | None:
        return claim_id(body, agent, self.accepts)

    busy = staticmethod(busy)
    Gone = Gone

    async def admit(
        self, agent: str, claims: ClaimAdmission,
        gone: Callable[[], Awaitable[object]] | None = None, size: int = 0,
    ) -> float | None:  # fmt: skip
        """A claim of `agent` whose request `Admission.enter`ed: the seconds after which it
        should come back (answer `busy`), or None: it has a claim's place (and the SDK
        serves it). Either way `Admission.claim_done` follows. Held (a body of `size` bytes,
        HOLD_BODY_MAX at most), it raises Gone when `gone` returns first (its client left;
        checked once more as its time comes)."""
        self.admission.claim_found()
        now = time.monotonic()
        early = claims.early(agent, now)
        if early is not None:
            if (
                early > HOLD_MAX_S or size > HOLD_BODY_MAX or agent in self.holding
                or len(self.holding) >= MAX_HOLDING
            ):  # fmt: skip
                return early
            self.holding.add(agent)
            try:
                stayed = await stays(gone, early) and await stays(gone, 0)
            finally:
                self.holding.discard(agent)
            if not stayed:
                raise Gone
            claims.early(agent, now + early)  # its time has come: forgotten, not told again
            arrival.mark()  # its waits' bound counts from its time, not from the hold
            now = time.monotonic()
        back = claims.refuse(now, agent)
        if back is not None:
            return back
        if not self.admission.claim_place():
            return claims.turn_refused(now, agent)
        return None


def accepts_of(validate: Callable[[dict[str, Any]], object] | None) -> Callable[[Any], bool]:
    """Whether claim_task's arguments pass `validate` (the tool's own check, as the SDK
    makes it), or never, when the tools served have no claim_task."""

    def accepts(arguments: dict[str, Any]) -> bool:
        if validate is None:
            return False
        try:
            validate(arguments)
        except ValueError:  # pydantic's ValidationError among them
            return False
        return True

    return accepts
