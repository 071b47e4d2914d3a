"""Claims at the HTTP edge (edge/http_claims.py): which bodies are an agent's claim, an
early claim held until its time outside held work's in-flight places, and the claims'
own places (http_limits.Admission)."""

import json
import time
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from wvo_mcp.edge.http_claims import HOLD_BODY_MAX, EdgeClaims, claim_id
from wvo_mcp.edge.http_limits import Admission, Limits
from wvo_mcp.rules.claim_admission import ClaimAdmission

pytestmark = pytest.mark.anyio


def call(name: str, arguments: Any = None, **extra: Any) -> bytes:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params,
                       **extra}).encode()  # fmt: skip


def test_only_an_agents_own_claim_is_recognised() -> None:
    assert claim_id(call("claim_task"), "a") == 7
    assert claim_id(call("claim_task", {}), "a") == 7
    assert claim_id(call("claim_task", {"agent_id": "a", "task_id": "t"}), "a") == 7
    assert claim_id(call("claim_task", None, id="x"), "a") == "x"
    # Not a claim, though the bytes say claim_task: not fooled into refusing them.
    summary = {"task_id": "t", "lease_token": "l", "summary": "claim_task"}
    assert claim_id(call("checkpoint", summary), "a") is None
    assert claim_id(call("claim_task", None, method="tools/list"), "a") is None
    assert claim_id(json.dumps([json.loads(call("claim_task"))]).encode(), "a") is None
    assert claim_id(call("claim_task", {"agent_id": "b"}), "a") is None  # the SDK refuses it
    assert claim_id(call("claim_task", None, id=True), "a") is None
    assert claim_id(call("claim_task", None, id=None), "a") is None  # a notification's
    assert claim_id(call("claim_task", []), "a") is None
    assert claim_id(b'{"name": "claim_task", ', "a") is None  # not JSON: the SDK's answer
    assert claim_id(call("claim_\\u0074ask"), "a") is None  # a backslash in its name
    # The same claim written otherwise: the tool takes it as the token's agent's.
    assert claim_id(call("claim_task").replace(b"_task", b"_\\u0074ask"), "a") == 7
    assert claim_id(call("claim_task", {"agent_id": None}), "a") == 7
    # What the SDK refuses outright is its to answer: an extra member, arguments refused.
    assert claim_id(call("claim_task", None, result={}), "a") is None
    assert claim_id(call("claim_task", {"x": 1}), "a", lambda a: "x" not in a) is None
    assert claim_id(call("claim_task", {"y": 1}), "a", lambda a: "x" not in a) == 7


def test_claims_have_their_own_places_and_never_take_held_works() -> None:
    admission = Admission(Limits(max_inflight=8, rate=0))
    counted = []
    for _ in range(20):  # twenty claims at once: eight served, twelve refused
        assert admission.enter() is None
        admission.claim_found()
        counted.append(admission.claim_place())
    assert counted.count(True) == admission.claim_cap() == 8
    for _ in range(8):  # held work still has every place of the cap
        assert admission.enter() is None
    refused = admission.enter()
    assert refused is not None and refused.status == 503  # its own ninth: for its own sake
    for took in counted:
        admission.claim_done(took)
        admission.leave()
    assert (admission.in_flight, admission.claims) == (8, 0)


async def test_an_early_claim_is_held_until_its_time_in_no_place_and_once_an_agent() -> None:
    admission = Admission(Limits(max_inflight=8, rate=0))
    edge = EdgeClaims(admission)
    claims = ClaimAdmission(turn_s=0.2, waiting=1)
    told = claims.refuse(time.monotonic(), "early")  # its claim refused: when to come back
    assert told is not None
    claims.waiting = 0  # the turn is free by then
    answers: list[float | None] = []

    async def claim() -> None:
        assert admission.enter() is None
        answers.append(await edge.admit("early", claims))

    async with anyio.create_task_group() as group:
        group.start_soon(claim)
        with anyio.fail_after(5):
            while "early" not in edge.holding:
                await checkpoint()
        assert admission.in_flight == 0 and admission.claims == 0  # held in no place
        assert admission.enter() is None
        second = await edge.admit("early", claims)  # the same agent again meanwhile
        assert second is not None and 0 < second <= told  # what is left, not a new slot
        admission.claim_done(False)
    assert answers == [None] and admission.claims == 1  # then let in, in a claim's place


async def test_an_early_claim_with_a_large_body_is_answered_at_once_not_held() -> None:
    """A held claim keeps its body outside the in-flight cap: only a claim's few hundred
    bytes are held; a larger body is told what is left of its time at once."""
    admission = Admission(Limits(max_inflight=8, rate=0))
    edge = EdgeClaims(admission)
    claims = ClaimAdmission(turn_s=5.0, waiting=1)  # told seconds away
    told = claims.refuse(time.monotonic(), "early")
    assert told is not None
    assert admission.enter() is None
    with anyio.fail_after(told / 2):  # answered, not held until its time
        back = await edge.admit("early", claims, size=HOLD_BODY_MAX + 1)
    assert back is not None and 0 < back <= told and not edge.holding
    admission.claim_done(False)
    assert "early" in claims.told  # the same slot, still kept
