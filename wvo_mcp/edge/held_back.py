"""Held work back before the time it was told is refused at the HTTP edge, from memory.

Held work only: a claim back before its time is held until then by http_claims.py.

Past capacity a heartbeat or checkpoint that finds no database connection within its bound
is refused `Overloaded: …; retry in 1 s`. Clients that come back 0.2-0.5 s later whatever
they were told (issue 73's impatient fleet) would make each such call three or four times
a second, each costing a request's parse, a dispatch and a wait for a connection: the
refusals themselves would keep the servers past capacity. So the process remembers, per
agent token, until when its last held call refused told it to wait; a `tools/call` of that
agent (other than a claim, which claim admission answers) that comes before then is answered
at once, before the SDK, with the tool's own refusal and what is left of the time told.
Nothing is read or changed and no renewal is claimed: the answer is the refusal it was
already given, come back at its time. At its time the call goes on as any other, so held
work still gets its share before claims (http_limits.Admission).
"""

import math
import time
from typing import Any

import pydantic_core
from starlette.responses import Response

from wvo_mcp.edge import protocol
from wvo_mcp.errors import Overloaded

MAX_AGENTS = 10_000  # agents remembered at once; the expired are dropped first


class HeldBack:
    """One process's agents told to come back later: agent -> time.monotonic() to."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.answered = 0  # calls refused here (tests, health)

    def told(self, agent: str, retry_after: float) -> None:
        """`agent`'s held call was refused, told to come back in `retry_after` s."""
        now = time.monotonic()
        if len(self.until) >= MAX_AGENTS:
            self.until = {a: t for a, t in self.until.items() if t > now}
            if len(self.until) >= MAX_AGENTS:
                return  # a refusal then costs what it costs in the tool
        self.until[agent] = now + retry_after

    def left(self, agent: str) -> float | None:
        """The seconds `agent` was told to wait that are still to run, or None."""
        until = self.until.get(agent)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self.until[agent]
            return None
        return left

    def refusal(self, body: bytes, left: float, version: str) -> Response | None:
        """The tool's Overloaded answer to `body`, a `tools/call` of another tool than a
        claim, shaped for protocol `version`, else None (the call goes on: the SDK or the
        claim admission answers it)."""
        try:
            found = pydantic_core.from_json(body)
        except ValueError:
            return None
        if not isinstance(found, dict) or found.get("method") != "tools/call":
            return None
        params, ident = found.get("params"), found.get("id")
        if not isinstance(params, dict) or isinstance(ident, bool):
            return None
        name = params.get("name")
        if not isinstance(name, str) or name == "claim_task" or not isinstance(ident, str | int):
            return None
        wait = math.ceil(left * 10) / 10
        why = (
            "this agent's last call was refused past capacity, and its time to come back is not yet"
        )
        refused = Overloaded(why, wait)
        text = f"Error executing tool {name}: Overloaded: {refused}"
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
        self.answered += 1
        return Response(protocol.result_body(ident, result, version), media_type="application/json")


PROCESS = HeldBack()  # the HTTP server process's (edge/calls.py tells, http_server.py asks)


def refused(agent: str | None, exc: BaseException) -> None:
    """A call of `agent` (an agent token's own, over HTTP) ended in `exc`: remembered if
    it was refused Overloaded."""
    if agent is not None and isinstance(exc, Overloaded):
        PROCESS.told(agent, exc.retry_after)
