"""Token checks that wait on the database never take held work's places (docs/http.md,
"Held work has places claims cannot take"): a real `serve --http` on PostgreSQL, a holder
whose token it knows, and a burst of claims from agents whose tokens it has not seen, their
lookups kept waiting in the database (their first use's write waits for a lock the test
holds, as a slow database keeps them). The holder's heartbeat is served meanwhile."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest

from tests.conftest import HANG_SECONDS
from tests.http.conftest import MCP_HEADERS, connect, http_server
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.process]

CAP = 4  # WVO_HTTP_MAX_INFLIGHT: held work's places
CLAIMERS = 12  # a burst of claims, more than held work's places and the token checks'
KEY = 0x77766F74  # the test's advisory lock (the store's are 0x77766F77 and 0x77766F63)
# A slow database for the tokens' first-use writes alone: each waits for the test's lock
# for as long as the test holds it (no lock timeout), holding its connection meanwhile.
SLOW_TOKEN_USE = f"""
CREATE FUNCTION slow_token_use() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', '0', true);
    PERFORM pg_advisory_xact_lock_shared({KEY});
    RETURN NEW;
END $$;
CREATE TRIGGER slow_token_use BEFORE UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION slow_token_use();
"""
WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s "
    "AND NOT granted"
)


def rpc(method: str, params: dict[str, Any], id_: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


async def prepare(url: str, work: Path) -> dict[str, str]:
    """A ready task and the tokens (a holder's, the claimers'), made by the store's code."""
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        await orchestrator.create_tasks([TaskSpec(id="t1", title="task t1")], actor="test")
        names = ["holder", *(f"claimer{i}" for i in range(CLAIMERS))]
        return {n: (await orchestrator.token_add("agent", n, by="person:test")).secret
                for n in names}  # fmt: skip
    finally:
        await orchestrator.close()


async def test_held_work_is_served_while_claims_wait_on_their_token_lookups(
    pg_migrated: Callable[[str], str], tmp_path: Path
) -> None:
    url = pg_migrated("lookups")
    secrets = await prepare(url, tmp_path / "cli")
    env = {"WVO_DATABASE_URL": url, "WVO_HTTP_MAX_INFLIGHT": CAP, "WVO_HTTP_RATE_PER_TOKEN": 0}
    claim = rpc("tools/call", {"name": "claim_task", "arguments": {}})
    answers: dict[str, httpx2.Response] = {}
    with http_server(tmp_path / "host", **env) as server:
        async with connect(server, secrets["holder"]) as holder:  # its token now known
            held = await holder.call("claim_task")
        assert held["claimed"] and held["task"]["id"] == "t1", held
        lease = {"task_id": "t1", "lease_token": held["lease_token"]}
        beat = rpc("tools/call", {"name": "heartbeat", "arguments": lease})
        async with (
            await psycopg.AsyncConnection.connect(url, autocommit=True) as db,
            server.http() as c,
        ):
            await db.execute(SLOW_TOKEN_USE)
            await db.execute("SELECT pg_advisory_lock(%s)", (KEY,))

            async def claims_of(name: str) -> None:
                headers = {**MCP_HEADERS, "Authorization": f"Bearer {secrets[name]}"}
                answers[name] = await c.post(server.url, content=claim, headers=headers)

            async with anyio.create_task_group() as group:
                for i in range(CLAIMERS):
                    group.start_soon(claims_of, f"claimer{i}")
                with anyio.fail_after(HANG_SECONDS):
                    while True:  # polling until the lookups wait in the database
                        found = await (await db.execute(WAITING, (KEY,))).fetchone()
                        assert found is not None
                        if found[0] >= CAP:
                            break
                        await anyio.sleep(0.02)
                    headers = {**MCP_HEADERS, "Authorization": f"Bearer {secrets['holder']}"}
                    served = await c.post(server.url, content=beat, headers=headers)
                    waiting = await (await db.execute(WAITING, (KEY,))).fetchone()
                await db.execute("SELECT pg_advisory_unlock(%s)", (KEY,))
    assert waiting is not None and waiting[0] >= CAP  # still waiting once it was answered
    assert served.status_code == 200, served.text
    result = served.json()["result"]
    assert not result.get("isError") and result["structuredContent"]["task_id"] == "t1", result
    assert len(answers) == CLAIMERS
    refused = [a for a in answers.values() if a.status_code != 200]
    # Past the token checks' own places, a claim is refused at once, told when to retry.
    assert refused, [a.text for a in answers.values()]
    for answer in refused:
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
        said = answer.json()
        assert said["error"] == "temporarily_unavailable", said
        assert "nothing was done. Retry after" in said["error_description"], said
