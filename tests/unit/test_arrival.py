"""orchestrator/arrival.py: a call's waits share one bound from its arrival, which the HTTP
edge marks as a request comes in (http_server.InFlightCap) and forgets once it is answered."""

import time

import pytest
from starlette.types import Message, Receive, Scope, Send

from wvo_mcp.edge.http_limits import Admission, Limits
from wvo_mcp.edge.http_server import PATH, InFlightCap
from wvo_mcp.orchestrator import arrival

pytestmark = pytest.mark.anyio


def test_what_is_left_counts_from_the_arrival_or_the_moment_given_never_under_the_floor() -> None:
    marked = arrival.mark(time.monotonic() - 0.3)
    try:
        assert arrival.left(0.5) <= 0.2
        assert arrival.left(0.2) == arrival.FLOOR_S  # spent: only what is free at once
        assert arrival.left(0.5, since=time.monotonic() - 0.4) <= 0.1  # work done: from then
    finally:
        arrival.unmark(marked)
    before = time.monotonic()
    assert arrival.arrived() >= before  # a call nobody marked counts from when it asks


async def test_the_edge_marks_a_request_as_it_arrives_and_forgets_it_once_answered() -> None:
    seen: list[tuple[float, float]] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        inside = time.monotonic()
        seen.append((arrival.arrived(), inside))

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    cap = InFlightCap(endpoint, Admission(Limits(max_inflight=8, rate=0)), crowd=lambda: None)
    before = time.monotonic()
    await cap({"type": "http", "path": PATH, "method": "POST"}, receive, send)
    after = time.monotonic()
    [(arrived, inside)] = seen
    assert before <= arrived < inside  # marked as it came in, not when the call asked
    assert arrival.arrived() >= after  # and forgotten once answered
