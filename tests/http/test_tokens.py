"""`wvo-mcp tokens`: secrets shown once and stored as digests; names follow the identity
rules; the role rule (toolset.role_allows) in one table."""

import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from tests.conftest import open_db, wvo
from tests.http.conftest import token
from wvo_mcp.config import Settings
from wvo_mcp.edge import access, toolset
from wvo_mcp.errors import Overloaded
from wvo_mcp.orchestrator import Orchestrator


def test_a_secret_is_shown_once_and_stored_only_as_its_digest(state_root: Path):
    made = wvo(state_root, "tokens", "add", "--role", "agent", "--name", "claude-1")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("wvo_") and len(secret) > 40
    assert "Authorization: Bearer" in made.stderr, "the hint says how to use it"
    with open_db(state_root) as db:
        (row,) = db.execute("SELECT * FROM api_tokens").fetchall()
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(dict(row))
    assert (row["role"], row["name"], row["revoked_at"]) == ("agent", "claude-1", None)
    for listing in (wvo(state_root, "tokens", "list"), wvo(state_root, "tokens", "list", "--json")):
        assert listing.returncode == 0
        assert secret not in listing.stdout and row["secret_sha256"] not in listing.stdout
        assert row["id"] in listing.stdout


def test_people_are_recorded_as_person_names(state_root: Path):
    token(state_root, "person", "alice")
    (listed,) = json.loads(wvo(state_root, "tokens", "list", "--json").stdout)
    assert (listed["role"], listed["name"]) == ("person", "person:alice")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--role", "agent", "--name", "person:eve"), "reserved"),
        (("--role", "operator", "--name", "health-monitor"), "reserved"),
        (("--role", "agent", "--name", " spaced "), "leading or trailing spaces"),
        (("--role", "agent"), "needs --role (agent, person or operator) and --name"),
    ],
)
def test_bad_token_names_are_refused(state_root: Path, args: tuple[str, ...], says: str):
    made = wvo(state_root, "tokens", "add", *args)
    assert made.returncode == 2 and says in made.stderr, made.stderr
    assert made.stdout == ""


def test_revoking_an_unknown_token_says_how_to_find_one(state_root: Path):
    token(state_root, "agent", "a1")
    refused = wvo(state_root, "tokens", "revoke", "tok-nope")
    assert refused.returncode == 2 and "tokens list" in refused.stderr


ROLE_TABLE = {
    # tool: (agent, operator, person)
    "claim_task": (True, True, False),
    "plan_update": (True, True, False),
    "task_create": (True, True, False),
    "task_get": (True, True, True),
    "health_report": (True, True, True),
    "landing_queue": (True, True, True),
    "token_list": (False, True, False),
    **{tool: (False, False, True) for tool in toolset.PERSON_TOOLS},
}


@pytest.mark.parametrize("tool", sorted(ROLE_TABLE))
def test_the_role_table(tool: str):
    allowed = tuple(toolset.role_allows(role, tool) for role in ("agent", "operator", "person"))
    assert allowed == ROLE_TABLE[tool]
    assert not toolset.role_allows("", tool), "an unknown role may call nothing"


@pytest.mark.anyio
async def test_a_verified_token_is_looked_up_again_only_once_a_token_is_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orchestrator = await Orchestrator.open(Settings(state_root=tmp_path / "state"))
    try:
        kept = await orchestrator.token_add("agent", "a1", "person:p")
        other = await orchestrator.token_add("agent", "a2", "person:p")
        looked_up: list[str] = []
        find = orchestrator.token_find

        async def counted(secret: str) -> object:
            looked_up.append(secret)
            return await find(secret)

        monkeypatch.setattr(orchestrator, "token_find", counted)
        monkeypatch.setattr(access, "TOKEN_CACHE_SECONDS", 0.0)  # the count asked every call
        verifier = access.StoreVerifier(lambda: orchestrator)
        for _ in range(3):
            assert await verifier.verify_token(kept.secret) is not None
        assert looked_up == [kept.secret]  # one lookup, then the cache
        await orchestrator.token_revoke(other.token.id)
        assert await verifier.verify_token(kept.secret) is not None  # asked again: still live
        assert looked_up == [kept.secret] * 2
        await orchestrator.token_revoke(kept.token.id)
        assert await verifier.verify_token(kept.secret) is None
        assert await verifier.verify_token(other.secret) is None
    finally:
        await orchestrator.close()


@pytest.mark.anyio
async def test_a_revoked_token_is_refused_while_the_count_of_revocations_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past capacity the count's read may be refused (Overloaded: the request is answered
    503). The verifier asks again only a second later, and meanwhile its cached tokens are
    trusted only while the count was read lately: past that, a request is refused (503)
    without a lookup of its own, rather than served from the cache for minutes."""
    orchestrator = await Orchestrator.open(Settings(state_root=tmp_path / "state"))
    try:
        made = await orchestrator.token_add("agent", "a1", "person:p")
        clock = {"now": 1000.0}
        monkeypatch.setattr(
            access, "time", SimpleNamespace(monotonic=lambda: clock["now"], time=time.time)
        )
        verifier = access.StoreVerifier(lambda: orchestrator)
        assert await verifier.verify_token(made.secret) is not None  # count read, cached

        async def refused() -> int:
            raise Overloaded("a database connection did not come within 0.50 s")

        find, revocations = orchestrator.token_find, orchestrator.token_revocations

        monkeypatch.setattr(orchestrator, "token_revocations", refused)
        await orchestrator.token_revoke(made.token.id)
        for _ in range(2):  # the count read last 2 s ago: no longer trusted
            clock["now"] += access.TOKEN_CACHE_SECONDS  # time to ask the count again
            with pytest.raises(Overloaded):
                await verifier.verify_token(made.secret)
        assert clock["now"] - 1000.0 >= access.COUNT_TRUSTED_SECONDS
        looked_up: list[str] = []

        async def counted(secret: str) -> object:
            looked_up.append(secret)
            raise AssertionError("a token looked up while the count is not known")

        monkeypatch.setattr(orchestrator, "token_find", counted)
        clock["now"] += access.TOKEN_CACHE_SECONDS / 2  # not yet time to ask again
        with pytest.raises(Overloaded):  # neither served from the cache nor looked up
            await verifier.verify_token(made.secret)
        assert looked_up == []
        monkeypatch.setattr(orchestrator, "token_find", find)
        monkeypatch.setattr(orchestrator, "token_revocations", revocations)
        clock["now"] += access.TOKEN_CACHE_SECONDS  # the count read again: refused (401)
        assert await verifier.verify_token(made.secret) is None
    finally:
        await orchestrator.close()


@pytest.mark.anyio
async def test_the_count_of_revocations_is_read_beside_the_requests_never_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its reader running (as edge/server.py's lifespan runs it), no request reads
    the count: the first waits for the reader's read, the rest use its answer, and a
    revocation is seen at the reader's next read."""
    orchestrator = await Orchestrator.open(Settings(state_root=tmp_path / "state"))
    try:
        made = await orchestrator.token_add("agent", "a1", "person:p")
        readers: list[object] = []
        revocations = orchestrator.token_revocations

        async def counted(within: float | None = None) -> int:
            readers.append(anyio.get_current_task().id)
            return await revocations(within)

        monkeypatch.setattr(orchestrator, "token_revocations", counted)
        verifier = access.StoreVerifier(lambda: orchestrator)
        async with anyio.create_task_group() as group:
            group.start_soon(verifier.watch, orchestrator)
            await anyio.wait_all_tasks_blocked()  # the reader waits for a request
            for _ in range(20):
                assert await verifier.verify_token(made.secret) is not None
            me = anyio.get_current_task().id
            assert readers and me not in readers  # read by the watcher only
            await orchestrator.token_revoke(made.token.id)
            refused = False
            with anyio.move_on_after(10 * access.COUNT_TRUSTED_SECONDS):
                while not refused:  # polled: the reader's next read comes within a second
                    refused = await verifier.verify_token(made.secret) is None
                    await anyio.sleep(0.05)
            assert refused and me not in readers
            group.cancel_scope.cancel()
    finally:
        await orchestrator.close()
