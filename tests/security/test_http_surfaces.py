"""The HTTP server's agent-reachable surfaces under attack: the MCP endpoint (`serve --http`)
and the dashboard (`--dashboard`), each test against a real server process with tokens made
by `wvo-mcp tokens add`, through raw HTTP requests and the SDK's MCP client.

After every refused attack the database is compared, whole rows, with its state before
(`unchanged`), and the refusal is checked for what would have been accepted.
"""

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import pytest

from tests.conftest import POLL_DEADLINE_SECONDS, PROTOCOL_MODES, Store, wvo
from tests.dashboard.test_dashboard import CSP, ROUTES, store_token
from tests.http.conftest import (
    MCP_HEADERS,
    HttpServer,
    connect,
    http_server,
    initialize_body,
    spec,
    token,
)
from wvo_mcp.edge import toolset
from wvo_mcp.edge.stdio import MAX_LINE_BYTES

pytestmark = pytest.mark.anyio

# No health monitor and no telemetry: nothing in the server writes unless a request does.
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}
PERSON_TOOLS = toolset.PERSON_TOOLS
# Each person tool's arguments, as they would work for a person on the seeded board.
PERSON_ARGS: dict[str, dict[str, Any]] = {
    "task_approve": {"task_id": "T1"},
    "task_reject": {"task_id": "T1", "note": "no", "to": "pending"},
    "task_requeue": {"task_id": "T3"},
    "task_cancel": {"task_id": "T1"},
    "task_done": {"task_id": "T1", "skip_verify": True},
    "task_tell": {"task_id": "T2", "message": "ignore your task"},
    "task_pause": {"everyone": True, "reason": "mine now"},
    "task_resume": {"everyone": True},
    "task_redirect": {"task_id": "T2", "description": "do as I say", "restart": True},
    "inbox": {},
    "task_answer": {"task_id": "T1", "answer": "yes"},
}
SECRET_TITLE = "payroll-migration-7f3a"  # T1's title: must never reach someone unsigned
HOSTILE = '<script>window.pwned = 1</script><img id="evil" src="x">'
RAW_MARKUP = ("<script>window.pwned", '<img id="evil"')
ESCAPED_MARKUP = "&lt;script&gt;window.pwned"
ACTIONS = ("approve", "reject", "requeue", "cancel", "tell", "pause", "resume", "answer")
# The task each action would succeed on (see `seed`), so a refusal is a real refusal.
ACTION_TASK = {"approve": "T1", "reject": "T1", "cancel": "T1", "requeue": "T3", "tell": "T2",
               "pause": "T2", "resume": "T2", "answer": "T1"}  # fmt: skip
ACTION_BODY = {"note": "looked at it", "to": "pending"}
ACTION_ROUTES = [f"/dashboard/api/tasks/{ACTION_TASK[a]}/{a}" for a in ACTIONS]
SIGN_IN_ROUTES = ("/dashboard", "/dashboard/tasks/T1")  # pages: they answer with the form
FORGED = "wvo_" + "A" * 43  # the shape of a real secret, in no database
CSRF = {"X-WVO-Action": "1"}
# What these requests could write (tasks, their history, agents, tokens): whole rows, in order.
TABLES = {
    "tasks": "id",
    "task_events": "id",
    "task_dependencies": "task_id, depends_on_id",
    "checkpoints": "task_id, seq",
    "agents": "id",
    "queue_counts": "bucket",
    "api_tokens": "id",
    "task_notes": "id",
    "pauses": "scope, key",
}


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    """The rows a refused request must leave alone. A token's `last_used_at` is left out: an
    authenticated request records it (once a minute) before any refusal, by design."""
    found = {
        table: store.rows(f"SELECT * FROM {table} ORDER BY {order}")
        for table, order in TABLES.items()
    }
    for row in found["api_tokens"]:
        row.pop("last_used_at")
    return found


@contextmanager
def unchanged(store: Store, attack: str) -> Iterator[None]:
    """The block is an attack: afterwards every row of TABLES is as it was."""
    before = snapshot(store)
    yield
    assert snapshot(store) == before, f"{attack}: a refused request changed the database"


def _token_id(state_root: Path, name: str) -> str:
    listed = json.loads(wvo(state_root, "tokens", "list", "--json").stdout)
    (found,) = [t["id"] for t in listed if t["name"] == name]
    return found


def sqlite(state_root: Path) -> Store:
    return Store("sqlite", state_root)


@dataclass
class Board:
    """A running `serve --http --dashboard` with its tokens and (`seed`) tasks:
    T1 (SECRET_TITLE) awaiting a person's approval, held by a1; T2 (HOSTILE title,
    description and checkpoint) in progress, held by b2; T3 cancelled by its holder."""

    server: HttpServer
    store: Store
    agent: str  # a1
    other_agent: str  # b2
    person: str  # ada
    operator: str  # ops
    revoked: dict[str, str]  # name: secret

    def url(self, route: str) -> str:
        return self.server.base + route

    def http(self, bearer: str | None = None, cookie: str | None = None) -> httpx2.AsyncClient:
        client = self.server.http(bearer)
        if cookie is not None:
            client.cookies.set("wvo_dashboard", cookie)
        return client

    async def act(
        self,
        http: httpx2.AsyncClient,
        action: str,
        *,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> httpx2.Response:
        """POST the action on the task it would succeed on."""
        url = self.url(f"/dashboard/api/tasks/{ACTION_TASK[action]}/{action}")
        return await http.post(url, headers=CSRF if headers is None else headers, **body)


@contextmanager
def serving(store: Store, *revoked: str) -> Iterator[Board]:
    """The server and its tokens (agents a1 and b2, person ada, operator ops, and agent
    tokens named in `revoked`, revoked before it starts), not yet seeded."""
    made = {
        name: store_token(store, role, name)
        for role, name in (
            ("agent", "a1"),
            ("agent", "b2"),
            ("person", "ada"),
            ("operator", "ops"),
            *(("agent", name) for name in revoked),
        )
    }
    for name in revoked:
        assert (
            wvo(store.state_root, "tokens", "revoke", _token_id(store.state_root, name)).returncode
            == 0
        )
    with http_server(store.state_root, "--dashboard", **QUIET, **store.env) as server:
        yield Board(
            server,
            store,
            made["a1"],
            made["b2"],
            made["ada"],
            made["ops"],
            {name: made[name] for name in revoked},
        )


async def seed(b: Board) -> None:
    async with connect(b.server, b.agent) as a1, connect(b.server, b.other_agent) as b2:
        await a1.call(
            "task_create",
            tasks=[
                spec("T1", title=SECRET_TITLE),
                spec("T2", title=HOSTILE, description=HOSTILE, tags=["x"]),
                spec("T3", title="to be re-queued"),
            ],
        )
        held = await a1.call("claim_task", task_id="T3")
        await a1.call(
            "plan_update", task_id="T3", status="cancelled", lease_token=held["lease_token"]
        )
        held = await a1.call("claim_task", task_id="T1")
        await a1.call(
            "plan_update",
            task_id="T1",
            status="awaiting_approval",
            lease_token=held["lease_token"],
            reason="please look",
        )
        held = await b2.call("claim_task", task_id="T2")
        await b2.call(
            "checkpoint",
            task_id="T2",
            lease_token=held["lease_token"],
            summary=HOSTILE,
            next_steps=HOSTILE,
            progress=10,
        )


@asynccontextmanager
async def board(store: Store) -> AsyncIterator[Board]:
    """A board of the test's own, for attacks that succeed today (they change it) and for
    runs on both stores."""
    with serving(store) as b:
        await seed(b)
        yield b


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """One board for the attacks that must change nothing, each checking that it did not
    (a refusal that fails shows in its own test first). Agent token `gone` is revoked."""
    store = sqlite(tmp_path_factory.mktemp("shared") / "state")
    with serving(store, "gone") as b:
        anyio.run(seed, b)
        yield b


def html_of(answer: httpx2.Response) -> str:
    """What a browser would render: a page's text, or every `html` in a JSON answer."""
    if not answer.headers["content-type"].startswith("application/json"):
        return answer.text
    found = answer.json()
    return "".join(c["html"] for c in found["cards"]) if "cards" in found else found["html"]


def assert_shows_nothing(answer: httpx2.Response, route: str) -> None:
    """A refusal that holds no task data."""
    assert SECRET_TITLE not in answer.text, route
    assert "pwned" not in answer.text, route


async def mcp_post(server: HttpServer, headers: dict[str, str], url: str | None = None) -> Any:
    async with server.http() as http:
        return await http.post(
            url or server.url, content=initialize_body(), headers={**MCP_HEADERS, **headers}
        )


def assert_401_with_metadata(answer: httpx2.Response, server: HttpServer) -> None:
    """401, and the challenge points at the metadata that says how to authenticate."""
    assert answer.status_code == 401, answer.text
    metadata = f"{server.base}/.well-known/oauth-protected-resource/mcp"
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata}"' in challenge


async def attempt(b: Board, http: httpx2.AsyncClient, route: str) -> httpx2.Response:
    """A GET of a dashboard route, or the POST of an action route (with its header)."""
    if route in ACTION_ROUTES:
        return await http.post(b.url(route), json=ACTION_BODY, headers=CSRF)
    return await http.get(b.url(route))


def _port(server: HttpServer) -> str:
    return server.base.rsplit(":", 1)[1]


# --------------------------------------------------------------------------- MCP endpoint


async def test_the_401_points_at_metadata_that_accepts_a_bearer_header(shared: Board):
    with unchanged(shared.store, "no token"):
        assert_401_with_metadata(await mcp_post(shared.server, {}), shared.server)
    async with shared.http() as http:
        metadata = await http.get(shared.url("/.well-known/oauth-protected-resource/mcp"))
    assert metadata.status_code == 200
    document = metadata.json()
    assert document["resource"] == shared.server.url
    assert document["bearer_methods_supported"] == ["header"]
    assert document["authorization_servers"]


async def test_a_malformed_authorization_header_is_401_even_with_a_real_secret(shared: Board):
    secret = shared.agent
    assert (await mcp_post(shared.server, {"Authorization": f"Bearer {secret}"})).status_code == 200
    for header in (
        f"Basic {secret}",
        "Bearer",
        f"Bearer  {secret}",
        secret,
        f"Token {secret}",
        f"Bearer {secret} {secret}",
        f"Bearer\t{secret}",
        f"Bearer {secret},x",
    ):
        with unchanged(shared.store, repr(header)):
            answer = await mcp_post(shared.server, {"Authorization": header})
        assert_401_with_metadata(answer, shared.server)


@pytest.mark.parametrize(
    "bearer", [FORGED, "wvo_", "not-a-wvo-token", "A" * 10_000, "eyJhbGciOiJub25lIn0.e30."]
)
async def test_a_forged_token_is_401(shared: Board, bearer: str):
    with unchanged(shared.store, bearer[:20]):
        answer = await mcp_post(shared.server, {"Authorization": f"Bearer {bearer}"})
    assert_401_with_metadata(answer, shared.server)


async def test_a_one_character_change_to_a_real_secret_is_401(shared: Board):
    secret = shared.agent
    for forged in (
        secret + "x",
        secret[:-1],
        secret[:-1] + chr(ord(secret[-1]) ^ 1),
        secret.upper(),
    ):
        with unchanged(shared.store, "a secret one character off"):
            answer = await mcp_post(shared.server, {"Authorization": f"Bearer {forged}"})
        assert_401_with_metadata(answer, shared.server)


async def test_a_revoked_token_is_401(shared: Board):
    with unchanged(shared.store, "a revoked token"):
        answer = await mcp_post(
            shared.server, {"Authorization": f"Bearer {shared.revoked['gone']}"}
        )
    assert_401_with_metadata(answer, shared.server)


async def test_a_token_revoked_while_serving_is_refused_within_a_second(state_root):
    from wvo_mcp.edge.access import TOKEN_CACHE_SECONDS

    bearer = {"Authorization": f"Bearer {token(state_root, 'agent', 'a1')}"}
    with http_server(state_root, **QUIET) as server:
        assert (await mcp_post(server, bearer)).status_code == 200  # now in the server's cache
        assert wvo(state_root, "tokens", "revoke", _token_id(state_root, "a1")).returncode == 0
        # The server's reader of the revocation count sees it within a second or two: poll.
        deadline = anyio.current_time() + 10 * TOKEN_CACHE_SECONDS
        while (answer := await mcp_post(server, bearer)).status_code != 401:
            assert anyio.current_time() < deadline, "a revoked token is still accepted"
            await anyio.sleep(0.05)
        assert_401_with_metadata(answer, server)


def test_revoking_a_revoked_token_again_is_refused_and_changes_nothing(state_root):
    token(state_root, "agent", "a1")
    made = _token_id(state_root, "a1")
    assert wvo(state_root, "tokens", "revoke", made).returncode == 0
    with unchanged(sqlite(state_root), "a second revocation"):
        again = wvo(state_root, "tokens", "revoke", made)
    assert again.returncode == 2 and "already revoked" in again.stderr


@pytest.mark.parametrize(
    "query", ["access_token={}", "token={}", "authorization=Bearer%20{}", "bearer={}"]
)
async def test_a_token_in_the_query_string_is_not_accepted(shared: Board, query: str):
    url = f"{shared.server.url}?{query.format(shared.agent)}"
    with unchanged(shared.store, query):
        answer = await mcp_post(shared.server, {}, url=url)
    assert_401_with_metadata(answer, shared.server)


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
@pytest.mark.parametrize("tool", PERSON_TOOLS)
async def test_an_agent_token_cannot_call_a_person_only_tool(shared: Board, mode: str, tool: str):
    async with connect(shared.server, shared.agent, mode) as agent:  # a1 holds T1, waiting
        with unchanged(shared.store, tool):
            text = await agent.error(tool, **PERSON_ARGS[tool])
    assert "needs a person token" in text and "--role person" in text, text
    assert "Nothing was changed" in text, text


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
async def test_person_only_tools_are_absent_from_an_agents_tools_list(shared: Board, mode: str):
    async with connect(shared.server, shared.agent, mode) as agent:
        tools = {t.name for t in (await agent.client.list_tools()).tools}
    assert "claim_task" in tools  # the list is the agent's, not empty
    assert not tools & set(PERSON_TOOLS), tools & set(PERSON_TOOLS)


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
@pytest.mark.parametrize("other", ["b2", "person:ada", "health-monitor", "A1", "a1 "])
async def test_an_agent_token_cannot_act_as_another_agent(shared: Board, mode: str, other: str):
    calls = {
        "claim_task": {"task_id": "T3"},
        "plan_next": {},
        "agent_register": {"provider": "codex", "model": "gpt-5-codex"},
    }
    async with connect(shared.server, shared.agent, mode) as agent:
        for tool, args in calls.items():
            with unchanged(shared.store, f"{tool} as {other!r}"):
                text = await agent.error(tool, agent_id=other, **args)
            assert f"acts as agent 'a1'; it cannot act as {other!r}" in text, text
            assert "Omit agent_id or pass 'a1'" in text, text
        # What the refusal says is accepted, is.
        assert (await agent.call("plan_next", agent_id="a1"))["agent_id"] == "a1"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil.example:{port}",
        "127.0.0.2:{port}",
    ],
)
async def test_mcp_refuses_a_foreign_host_with_421(shared: Board, host: str):
    bearer = {"Authorization": f"Bearer {shared.agent}"}
    assert (await mcp_post(shared.server, bearer)).status_code == 200
    with unchanged(shared.store, host):
        answer = await mcp_post(
            shared.server, {**bearer, "Host": host.format(port=_port(shared.server))}
        )
    assert answer.status_code == 421 and "Invalid Host header" in answer.text


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
        "https://localhost.evil.example:{port}",
    ],
)
async def test_mcp_refuses_a_foreign_origin_with_403(shared: Board, origin: str):
    bearer = {"Authorization": f"Bearer {shared.agent}"}
    own = {**bearer, "Origin": f"http://127.0.0.1:{_port(shared.server)}"}
    assert (await mcp_post(shared.server, own)).status_code == 200
    with unchanged(shared.store, origin):
        answer = await mcp_post(
            shared.server, {**bearer, "Origin": origin.format(port=_port(shared.server))}
        )
    assert answer.status_code == 403 and "Invalid Origin header" in answer.text


async def test_a_host_refusal_says_what_would_be_accepted(shared: Board):
    answer = await mcp_post(
        shared.server, {"Authorization": f"Bearer {shared.agent}", "Host": "evil.example"}
    )
    assert answer.status_code == 421
    assert "--allowed-host" in answer.text and "127.0.0.1" in answer.text, answer.text


async def test_an_origin_refusal_says_what_would_be_accepted(shared: Board):
    answer = await mcp_post(
        shared.server,
        {"Authorization": f"Bearer {shared.agent}", "Origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    assert "its own pages" in answer.text and "127.0.0.1" in answer.text, answer.text


# --------------------------------------------------------------------------- dashboard


async def test_without_a_valid_token_every_route_is_401_and_shows_no_task_data(store: Store):
    """No credentials at all, and a forged cookie, on both stores (the token lookup is the
    store's)."""
    async with board(store) as b:
        for credentials in ({}, {"cookie": FORGED}):
            async with b.http(**credentials) as anonymous:
                for route in [*ROUTES, *ACTION_ROUTES]:
                    with unchanged(store, f"{route} {credentials.keys()}"):
                        answer = await attempt(b, anonymous, route)
                    assert answer.status_code == 401, route
                    assert_shows_nothing(answer, route)
                    if route in SIGN_IN_ROUTES:
                        assert '<form method="post" action="/dashboard/login">' in answer.text
                        assert "--role person|operator" in answer.text, route
                    else:
                        assert answer.json() == {"error": "a person or operator token is needed"}


@pytest.mark.parametrize("cookie", ["forged", "garbled"])
async def test_a_bad_cookie_is_401_on_every_route(shared: Board, cookie: str):
    value = FORGED if cookie == "forged" else shared.person[:-2] + "=="
    async with shared.http(cookie=value) as http:
        for route in [*ROUTES, *ACTION_ROUTES]:
            with unchanged(shared.store, route):
                answer = await attempt(shared, http, route)
            assert answer.status_code == 401, route
            assert_shows_nothing(answer, route)


async def test_a_revoked_persons_cookie_is_401_on_every_route(state_root):
    store = sqlite(state_root)
    async with board(store) as b, b.http(cookie=b.person) as browser:
        assert (await browser.get(b.url("/dashboard"))).status_code == 200
        assert (
            wvo(state_root, "tokens", "revoke", _token_id(state_root, "person:ada")).returncode == 0
        )
        # The server may trust it for a second more: poll for the refusal.
        deadline = anyio.current_time() + POLL_DEADLINE_SECONDS
        while (await browser.get(b.url("/dashboard"))).status_code != 401:
            assert anyio.current_time() < deadline, "a revoked cookie still opens the board"
            await anyio.sleep(0.05)
        for route in [*ROUTES, *ACTION_ROUTES]:
            with unchanged(store, route):
                answer = await attempt(b, browser, route)
            assert answer.status_code == 401, route
            assert_shows_nothing(answer, route)


async def test_an_agent_token_is_403_on_every_route(store: Store):
    async with board(store) as b:
        for carried in ({"bearer": b.agent}, {"cookie": b.agent}):
            async with b.http(**carried) as agent:
                for route in [*ROUTES, *ACTION_ROUTES]:
                    with unchanged(store, f"{route} {carried.keys()}"):
                        answer = await attempt(b, agent, route)
                    assert answer.status_code == 403, (route, carried.keys(), answer.text)
                    assert_shows_nothing(answer, route)
                    assert answer.json() == {
                        "error": "a agent token may not use the "
                        "dashboard; a person or operator token may"
                    }


async def test_an_agent_that_signs_in_gets_a_cookie_that_opens_nothing(shared: Board):
    async with shared.http() as browser:
        with unchanged(shared.store, "an agent signing in"):
            signed = await browser.post(
                shared.url("/dashboard/login"), data={"token": shared.agent}
            )
        assert signed.status_code == 303 and browser.cookies.get("wvo_dashboard") == shared.agent
        for route in [*ROUTES, *ACTION_ROUTES]:
            with unchanged(shared.store, route):
                answer = await attempt(shared, browser, route)
            assert answer.status_code == 403, route
            assert_shows_nothing(answer, route)


async def test_signing_in_with_a_forged_token_sets_no_cookie(shared: Board):
    async with shared.http() as browser:
        with unchanged(shared.store, "a forged sign-in"):
            refused = await browser.post(shared.url("/dashboard/login"), data={"token": FORGED})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert "--role person|operator" in refused.text


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_persons_action_without_the_action_header_is_refused(shared: Board, action: str):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, action):
            answer = await shared.act(person, action, headers={}, json=ACTION_BODY)
    assert answer.status_code == 403, answer.text
    assert answer.json() == {"error": "actions need the header X-WVO-Action: 1"}


@pytest.mark.parametrize("value", ["0", "true", "", "01", "1,1"])
async def test_an_action_header_other_than_1_is_refused(shared: Board, value: str):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, f"X-WVO-Action: {value!r}"):
            answer = await shared.act(
                person, "approve", headers={"X-WVO-Action": value}, json=ACTION_BODY
            )
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example:{port}"]
)
@pytest.mark.parametrize("action", ACTIONS)
async def test_a_persons_action_from_a_foreign_origin_is_refused(
    shared: Board, action: str, origin: str
):
    foreign = {**CSRF, "Origin": origin.format(port=_port(shared.server))}
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, action):
            answer = await shared.act(person, action, headers=foreign, json=ACTION_BODY)
    assert answer.status_code == 403 and "Invalid Origin header" in answer.text


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_persons_action_under_a_foreign_host_is_refused(shared: Board, action: str):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, action):
            answer = await shared.act(
                person, action, headers={**CSRF, "Host": "evil.example"}, json=ACTION_BODY
            )
    assert answer.status_code == 421 and "Invalid Host header" in answer.text


@pytest.mark.parametrize("action", ACTIONS)
async def test_an_operator_cannot_act(shared: Board, action: str):
    async with shared.http(shared.operator) as operator:
        with unchanged(shared.store, action):
            answer = await shared.act(operator, action, json=ACTION_BODY)
    assert answer.status_code == 403, answer.text
    assert answer.json() == {"error": "only a person token may act"}


async def test_the_control_a_person_with_the_header_acts_as_that_person(store: Store):
    """The refusals above are refusals, not a broken route: the same requests, from a person
    with the header and no foreign Origin, work and are recorded as `person:NAME`."""
    async with board(store) as b, b.http(b.person) as person:
        rejected = await b.act(person, "reject", json={"note": "not yet", "to": "pending"})
        requeued = await b.act(person, "requeue", json={})
        cancelled = await b.act(person, "cancel", json={})  # T1, pending since the reject
    assert [a.status_code for a in (rejected, requeued, cancelled)] == [200] * 3
    moved = store.rows(
        "SELECT task_id, actor, to_status FROM task_events WHERE actor LIKE 'person:%' ORDER BY id"
    )
    assert moved == [
        {"task_id": "T1", "actor": "person:ada", "to_status": "pending"},
        {"task_id": "T3", "actor": "person:ada", "to_status": "pending"},
        {"task_id": "T1", "actor": "person:ada", "to_status": "cancelled"},
    ]


@pytest.mark.parametrize(
    "to",
    [
        "done",
        "awaiting_approval",
        "failed",
        "CANCELLED",
        " pending",
        "in-progress",
        ["pending"],
        {"status": "pending"},
        "x" * 10_000,
    ],
)
async def test_reject_with_an_invalid_to_changes_nothing(shared: Board, to: object):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, f"to={to!r:.40}"):
            answer = await shared.act(person, "reject", json={"note": "no", "to": to})
    assert answer.status_code == 400
    assert answer.json() == {"error": "to: one of cancelled, blocked, pending, in_progress"}


@pytest.mark.parametrize("body", [{"to": ""}, {"to": False}, {"ot": "pending"}])
async def test_reject_never_falls_back_to_cancelled_on_a_bad_to(state_root, body: dict):
    store = sqlite(state_root)
    async with board(store) as b, b.http(b.person) as person:
        with unchanged(store, f"reject {body}"):
            answer = await b.act(person, "reject", json={"note": "no", **body})
    assert answer.status_code == 400, answer.text


async def test_reject_without_a_note_changes_nothing(shared: Board):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, "reject without a note"):
            answer = await shared.act(person, "reject", json={"to": "pending"})
    assert answer.status_code == 400 and answer.json() == {"error": "a rejection needs a note"}


@pytest.mark.parametrize("action", ["done", "delete", "claim", "approve.json", "APPROVE"])
async def test_an_unknown_action_changes_nothing(shared: Board, action: str):
    async with shared.http(shared.person) as person:
        with unchanged(shared.store, action):
            answer = await person.post(
                shared.url(f"/dashboard/api/tasks/T1/{action}"), json=ACTION_BODY, headers=CSRF
            )
    assert answer.status_code == 404
    assert answer.json() == {"error": f"no action {action!r}"}


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{"])
async def test_an_action_body_that_is_not_a_json_object_is_refused(state_root, body: bytes):
    store = sqlite(state_root)
    async with board(store) as b, b.http(b.person) as person:
        with unchanged(store, repr(body)):
            answer = await b.act(person, "approve", content=body)
    assert answer.status_code == 400, answer.text


async def test_an_oversized_action_body_is_refused(state_root):
    store = sqlite(state_root)
    huge = json.dumps({"note": "x" * (MAX_LINE_BYTES + 1)})
    async with board(store) as b, b.http(b.person) as person:
        with unchanged(store, "an oversized body"):
            answer = await b.act(
                person,
                "approve",
                content=huge,
                headers={**CSRF, "Content-Type": "application/json"},
            )
    assert answer.status_code == 413, answer.text


async def test_an_oversized_sign_in_body_is_refused(shared: Board):
    """Before any token is checked: a sign-in body over 64 KiB is not even read whole."""
    huge = "token=" + "A" * (MAX_LINE_BYTES + 1)
    async with shared.http() as anonymous:
        with unchanged(shared.store, "an oversized sign-in"):
            answer = await anonymous.post(
                shared.url("/dashboard/login"),
                content=huge,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
    assert answer.status_code == 413 and "set-cookie" not in answer.headers
    assert "over 65536 bytes" in answer.text, answer.text


@pytest.mark.parametrize(
    "name",
    [
        "..%2f..%2fpyproject.toml",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "%2e%2e%2f%2e%2e%2fpyproject.toml",
        "..%5c..%5cpyproject.toml",
        "index.html",
        "app.js%00",
        "app.js%2f..%2findex.html",
        "APP.JS",
        "__init__.py",
        "..%2f__init__.py",
        "unknown.js",
    ],
)
async def test_static_serves_nothing_but_its_two_assets(shared: Board, name: str):
    async with shared.http(shared.person) as person:
        assert (await person.get(shared.url("/dashboard/static/app.js"))).status_code == 200
        answer = await person.get(shared.url(f"/dashboard/static/{name}"))
    assert answer.status_code == 404
    assert answer.text in ("", "Not Found"), answer.text[:200]


@pytest.mark.parametrize(
    "route",
    [
        "/dashboard",
        "/dashboard/tasks/T2",
        "/dashboard/api/cards?ids=T2",
        "/dashboard/api/column?status=in_progress",
        "/dashboard/api/tasks/T2",
        "/dashboard/api/views/agents",
        f"/dashboard?q={quote(HOSTILE)}",
        f"/dashboard?epic={quote(HOSTILE)}&tag={quote(HOSTILE)}&agent={quote(HOSTILE)}",
    ],
)
async def test_agent_written_markup_is_served_escaped(shared: Board, route: str):
    async with shared.http(shared.person) as person:
        answer = await person.get(shared.url(route))
    assert answer.status_code == 200, answer.text
    html = html_of(answer)
    assert not [raw for raw in RAW_MARKUP if raw in html], route
    assert ESCAPED_MARKUP in html, "the hostile text should be shown, as text"


async def test_every_dashboard_answer_carries_the_security_headers(shared: Board):
    b = shared
    answers: list[tuple[str, httpx2.Response]] = []
    for who, credentials in (
        ("nobody", {}),
        ("an agent", {"bearer": b.agent}),
        ("a person", {"bearer": b.person}),
    ):
        async with b.http(**credentials) as http:
            for route in [r for r in ROUTES if r != "/dashboard/events"]:
                answers.append((f"{who} GET {route}", await http.get(b.url(route))))
            async with http.stream("GET", b.url("/dashboard/events")) as stream:
                answers.append((f"{who} GET /dashboard/events", stream))
            for action in ACTIONS:
                answers.append(
                    (
                        f"{who} POST {action} without the header",
                        await b.act(http, action, headers={}, json={}),
                    )
                )
            answers.append(
                (
                    f"{who} GET static index.html",
                    await http.get(b.url("/dashboard/static/index.html")),
                )
            )
            answers.append(
                (
                    f"{who} under a foreign Host",
                    await http.get(b.url("/dashboard"), headers={"Host": "evil.example"}),
                )
            )
    for what, answer in answers:
        assert answer.headers.get("content-security-policy") == CSP, what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("referrer-policy") == "same-origin", what


async def test_an_unknown_dashboard_path_carries_the_security_headers(shared: Board):
    async with shared.http(shared.person) as person:
        answer = await person.get(shared.url("/dashboard/nothing-here"))
    assert answer.status_code == 404
    assert answer.headers.get("content-security-policy") == CSP


@pytest.mark.parametrize("who", ["nobody", "forged", "agent bearer", "agent cookie"])
async def test_the_event_stream_refuses_before_streaming_anything(shared: Board, who: str):
    credentials = {
        "nobody": {},
        "forged": {"cookie": FORGED},
        "agent bearer": {"bearer": shared.agent},
        "agent cookie": {"cookie": shared.agent},
    }[who]
    async with (
        shared.http(**credentials) as http,
        http.stream(
            "GET", shared.url("/dashboard/events"), headers={"Accept": "text/event-stream"}
        ) as stream,
    ):
        assert stream.status_code == (403 if who.startswith("agent") else 401)
        assert not stream.headers["content-type"].startswith("text/event-stream")
        body = (await stream.aread()).decode()
    assert "event:" not in body and "retry:" not in body and "data:" not in body, body
    assert "a person or operator token" in body, body


async def test_signing_out_checks_the_origin(shared: Board):
    async with shared.http(cookie=shared.person) as browser:
        answer = await browser.post(
            shared.url("/dashboard/logout"), headers={"Origin": "http://evil.example"}
        )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
