"""The loop's lane over stdio (edge/stdio.Lane, edge/hot_calls.py) answers as the SDK does.

Two real stdio servers on one state folder, started as a user's are (warm start): one
with telemetry on, whose SDK spans keep every call on the SDK's path, and one with the
lane open (its debug log says which calls it took). The same raw lines go to both after
the same handshake; every answer must be the same, refusals and all."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import server_params
from tests.http.test_hot_calls import CALLS
from tests.security.fuzzing import RawServer

pytestmark = pytest.mark.process

ENV = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_AGENT_ID": "hot"}


@contextmanager
def raw(state_root: Path, log: Path, **env: object) -> Iterator[RawServer]:
    with log.open("wb") as stderr:
        server = RawServer(server_params(state_root, **ENV, **env), stderr)
        try:
            server.initialize()
            yield server
        finally:
            assert server.close() == 0, log.read_text()[-3000:]


def test_the_lane_answers_each_call_over_stdio_as_the_sdk_does(tmp_path: Path) -> None:
    state_root = tmp_path / "state"
    with ExitStack() as stack:
        sdk = stack.enter_context(raw(state_root, tmp_path / "sdk.log", WVO_OTEL_ENABLED=1))
        lane = stack.enter_context(
            raw(state_root, tmp_path / "lane.log", WVO_OTEL_ENABLED=0, WVO_LOG_LEVEL="debug")
        )
        sdk.call_tool("task_create", {"tasks": [{"id": "H1", "title": "one"}]})
        answers: list[dict[str, Any]] = []
        for version, body in CALLS:
            if version not in (None, "2025-11-25"):
                continue  # over stdio the connection's revision is its handshake's
            theirs, ours = (s.request("tools/call", body["params"]) for s in (sdk, lane))
            assert ours == {**theirs, "id": ours["id"]}, body
            answers.append(ours)
        assert "isError" in str(answers) and "structuredContent" in str(answers)
        # The lane then serves a holder's loop; the SDK's server sees its effects.
        claim = lane.call_tool("claim_task", {})
        held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
        assert lane.call_tool("heartbeat", held)["task_id"] == "H1"
        assert lane.call_tool("checkpoint", {**held, "summary": "half"})["seq"] == 1
        done = lane.call_tool("plan_update", {**held, "status": "done"})
        assert done["status"] == "done"
        assert sdk.call_tool("task_get", {"task_id": "H1"})["status"] == "done"
    took = (tmp_path / "lane.log").read_text()
    for tool in ("plan_next", "heartbeat", "checkpoint", "claim_task", "plan_update"):
        assert f"{tool}: answered in the loop's lane" in took, tool
    assert "answered in the loop's lane" not in (tmp_path / "sdk.log").read_text()
