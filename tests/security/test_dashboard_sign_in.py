"""The dashboard's sign-in and its answers under attack, against real server processes.

Login CSRF: a page on another port (or scheme) of the same host is the same *site*, so the
cookie's `SameSite=Strict` does not stop its form; the server must refuse every sign-in,
sign-out and action whose Origin is not exactly its own. The cookie must be `Secure`
whenever people reach the server over https (its own TLS, or a TLS proxy named by
`--public-url`), and no answer that carries data may be kept by a cache.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.certs import self_signed
from tests.dashboard.test_dashboard import ROUTES, TIMEOUT_MS, browser_page, store_token
from tests.http.conftest import free_port, http_server, token
from tests.listening import serve_in_thread
from tests.security.test_http_surfaces import (
    ACTION_BODY,
    ACTIONS,
    CSRF,
    QUIET,
    Board,
    _port,
    seed,
    serving,
    sqlite,
    unchanged,
)
from wvo_mcp.edge.host_guard import foreign_origin
from wvo_mcp.edge.http_server import Options

pytestmark = pytest.mark.anyio

PROXIED = "https://wvo.example.test/mcp"  # the public URL of a TLS proxy in front
PROXY_ORIGIN = "https://wvo.example.test"
LOGIN = "/dashboard/login"
Attacked = tuple[Board, str]  # a seeded board, and the attacker's own person token


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacked]:
    """A seeded board (tests/security/test_http_surfaces.py) and an attacker's own person
    token, `mallory`."""
    store = sqlite(tmp_path_factory.mktemp("board") / "state")
    with serving(store) as b:
        anyio.run(seed, b)
        yield b, store_token(store, "person", "mallory")


def cookie_attributes(answer: httpx2.Response) -> tuple[str, set[str]]:
    """The dashboard cookie's value and its attributes (lower case), from the one
    Set-Cookie header."""
    (header,) = answer.headers.get_list("set-cookie")
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    assert name == "wvo_dashboard", header
    return value, {a.lower() for a in attributes}


def own(b: Board) -> str:
    return f"http://127.0.0.1:{_port(b.server)}"


# --------------------------------------------------------------------------- the origins


@pytest.mark.parametrize(
    ("options", "origins"),
    [
        (
            Options(),
            ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"),
        ),
        (
            Options(public_url=PROXIED),
            (PROXY_ORIGIN, "http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"),
        ),
        (Options(host="0.0.0.0", public_url="https://WVO.example.test:443/mcp"), (PROXY_ORIGIN,)),
        (
            Options(host="0.0.0.0", public_url="http://u@wvo.example.test:8080/mcp"),
            ("http://wvo.example.test:8080",),
        ),
        (Options(host="::", public_url="https://[2001:db8::1]:9443/mcp"), ("https://[2001:db8::1]:9443",)),
        (Options(host="10.0.0.5", port=443, certfile=Path("c"), keyfile=Path("k")), ("https://10.0.0.5",)),
        (Options(host="10.0.0.5", port=80), ("http://10.0.0.5",)),
    ],
)  # fmt: skip
def test_the_origins_a_sign_in_is_accepted_from(options: Options, origins: tuple[str, ...]):
    assert options.origins == origins


@pytest.mark.parametrize(
    ("origin", "referer", "refused"),
    [
        ("http://127.0.0.1:8765", None, False),
        ("HTTP://LocalHost:8765", None, False),  # scheme and host are case-free
        (None, None, False),  # no browser page: a script
        (None, "http://127.0.0.1:8765/dashboard?q=x", False),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8766/", False),  # Origin decides
        ("http://127.0.0.1:8765/", None, True),  # not an origin
        ("http://127.0.0.1:8766", "http://127.0.0.1:8765/dashboard", True),
        ("", None, True),
        (None, "http://127.0.0.1:8766/", True),
        (None, "https://127.0.0.1:8765/", True),
        (None, "http://127.0.0.1:99999/", True),
        (None, "javascript:alert(1)", True),
    ],
)
def test_what_counts_as_another_origin(origin: str | None, referer: str | None, refused: bool):
    own = Options().origins
    assert (foreign_origin(origin, referer, own) is not None) == refused


# --------------------------------------------------------------------------- the cookie


async def test_the_cookie_on_plain_loopback_is_httponly_strict_and_not_secure(board: Attacked):
    b, _ = board
    async with b.http() as browser:
        signed = await browser.post(
            b.url(LOGIN), data={"token": b.person}, headers={"Origin": own(b)}
        )
    assert signed.status_code == 303, signed.text
    value, attributes = cookie_attributes(signed)
    assert value == b.person
    assert attributes == {"httponly", "path=/dashboard", "samesite=strict"}, attributes


async def test_the_cookie_is_secure_behind_a_tls_proxy(state_root: Path):
    """The server speaks plain HTTP on loopback; the proxy in front speaks https and sends no
    X-Forwarded-Proto: the public URL alone says people use https."""
    person = token(state_root, "person", "ada")
    with http_server(state_root, "--dashboard", "--public-url", PROXIED, **QUIET) as server:
        async with server.http() as proxy:
            # As the proxy passes a browser's sign-in on: its Host, the page's Origin.
            signed = await proxy.post(
                server.base + LOGIN,
                data={"token": person},
                headers={"Host": "wvo.example.test", "Origin": PROXY_ORIGIN},
            )
            assert signed.status_code == 303, signed.text
            assert "secure" in cookie_attributes(signed)[1]
            # Signing in at the bound address itself still marks it Secure.
            local = f"http://127.0.0.1:{server.base.rsplit(':', 1)[1]}"
            direct = await proxy.post(
                server.base + LOGIN, data={"token": person}, headers={"Origin": local}
            )
    assert direct.status_code == 303, direct.text
    value, attributes = cookie_attributes(direct)
    assert value == person
    assert attributes == {"httponly", "path=/dashboard", "samesite=strict", "secure"}


async def test_the_cookie_is_secure_when_the_server_serves_tls(state_root: Path, tmp_path: Path):
    certfile, keyfile = self_signed(tmp_path)
    person = token(state_root, "person", "ada")
    flags = ("--dashboard", "--certfile", str(certfile), "--keyfile", str(keyfile))
    with http_server(state_root, *flags, cafile=certfile, **QUIET) as server:
        async with server.http() as browser:
            signed = await browser.post(
                server.base + LOGIN, data={"token": person}, headers={"Origin": server.base}
            )
    assert signed.status_code == 303, signed.text
    assert "secure" in cookie_attributes(signed)[1]


# --------------------------------------------------------------------------- no-store


async def test_every_dashboard_answer_says_no_store(board: Attacked):
    """Pages, fragments, JSON, the stream, static files, sign-in and sign-out, actions and
    refusals: exactly one `Cache-Control: no-store` on each."""
    b, _ = board
    answers: list[tuple[str, httpx2.Response]] = []
    routes = [
        *[r for r in ROUTES if r != "/dashboard/events"],
        "/dashboard/api/views/autopilot",
        "/dashboard/api/column?status=awaiting_approval",
        "/dashboard/api/cards?ids=T1,T2,T3",
        "/dashboard/static/app.css",
        "/dashboard/nothing-here",
    ]
    for who, bearer in (("nobody", None), ("an agent", b.agent), ("a person", b.person)):
        async with b.http(bearer) as http:
            for route in routes:
                answers.append((f"{who} GET {route}", await http.get(b.url(route))))
            async with http.stream("GET", b.url("/dashboard/events")) as stream:
                answers.append((f"{who} GET /dashboard/events", stream))
            # Without the action header each is refused: the shared board stays as it is.
            for action in ACTIONS:
                url = b.url(f"/dashboard/api/tasks/T1/{action}")
                answers.append((f"{who} POST {action}", await http.post(url, json=ACTION_BODY)))
            answers.append(
                (
                    f"{who} POST autopilot pause",
                    await http.post(b.url("/dashboard/api/autopilot/pause"), json={}, headers=CSRF),
                )
            )
    async with b.http() as browser:
        for what, secret in (("signed in", b.person), ("refused", "wvo_" + "A" * 43)):
            signed = await browser.post(b.url(LOGIN), data={"token": secret})
            answers.append((f"sign-in {what}", signed))
        answers.append(("sign-out", await browser.post(b.url("/dashboard/logout"))))
        answers.append(
            (
                "sign-in from another origin",
                await browser.post(
                    b.url(LOGIN), data={"token": b.person}, headers={"Origin": "null"}
                ),
            )
        )
    assert {answer.status_code for _, answer in answers} >= {200, 303, 401, 403, 404, 409}
    for what, answer in answers:
        assert answer.headers.get_list("cache-control") == ["no-store"], what


# --------------------------------------------------------------------------- login CSRF


FOREIGN = [
    "http://127.0.0.1:{other}",  # another port of the same host: the same site
    "https://127.0.0.1:{port}",  # the same host and port, another scheme
    "http://localhost:{other}",
    "http://[::1]:{other}",
    "http://127.0.0.1",
    "http://127.0.0.1:{port}.evil.example",
    "null",
    "",
]


@pytest.mark.parametrize("origin", FOREIGN)
async def test_a_sign_in_from_another_origin_of_the_same_host_is_refused(
    board: Attacked, origin: str
):
    """The attacker's page posts its own person token: the victim's browser must not be
    signed in as the attacker (whose name its approvals would then carry)."""
    b, mallory = board
    sent = origin.format(port=_port(b.server), other=free_port())
    async with b.http() as victim:
        with unchanged(b.store, f"a sign-in from {sent!r}"):
            refused = await victim.post(
                b.url(LOGIN), data={"token": mallory}, headers={"Origin": sent}
            )
        assert refused.status_code == 403, refused.text
        assert "set-cookie" not in refused.headers
        assert not victim.cookies
        assert f"Invalid Origin header {sent!r}" in refused.text
        # It says what is accepted: this server's own origins, exactly.
        assert own(b) in refused.text and f"http://localhost:{_port(b.server)}" in refused.text
        assert (await victim.get(b.url("/dashboard"))).status_code == 401


async def test_a_sign_in_without_origin_but_with_a_foreign_referer_is_refused(board: Attacked):
    b, mallory = board
    attack = f"http://127.0.0.1:{free_port()}/attack.html?x=1"
    async with b.http() as victim:
        with unchanged(b.store, "a sign-in with a foreign Referer"):
            refused = await victim.post(
                b.url(LOGIN), data={"token": mallory}, headers={"Referer": attack}
            )
        assert refused.status_code == 403, refused.text
        assert "set-cookie" not in refused.headers and not victim.cookies
        assert "No Origin header" in refused.text and own(b) in refused.text
        assert "attack.html" not in refused.text  # only the Referer's origin is shown


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "{own}"},
        {"Referer": "{own}/dashboard"},  # an old browser: no Origin, its own page's Referer
        {},  # a script: neither
        {"Origin": "http://localhost:{port}", "Host": "localhost:{port}"},
    ],
)
async def test_the_control_a_sign_in_from_the_servers_own_origin_works(
    board: Attacked, headers: dict[str, str]
):
    b, _ = board
    sent = {k: v.format(own=own(b), port=_port(b.server)) for k, v in headers.items()}
    async with b.http() as browser:
        signed = await browser.post(b.url(LOGIN), data={"token": b.person}, headers=sent)
        assert signed.status_code == 303, signed.text
        assert cookie_attributes(signed)[0] == b.person
        page = await browser.get(b.url("/dashboard"))
    assert page.status_code == 200 and "ada" in page.text


@pytest.mark.parametrize("action", ACTIONS)
async def test_an_action_from_another_port_of_the_same_host_is_refused(
    board: Attacked, action: str
):
    """The same exact check as the sign-in: the action header alone is not all."""
    b, _ = board
    sent = {**CSRF, "Origin": f"http://127.0.0.1:{free_port()}"}
    async with b.http(cookie=b.person) as victim:
        with unchanged(b.store, f"{action} from another port"):
            refused = await b.act(victim, action, headers=sent, json=ACTION_BODY)
    assert refused.status_code == 403 and "Invalid Origin header" in refused.text


async def test_a_sign_out_from_another_port_of_the_same_host_is_refused(board: Attacked):
    b, _ = board
    async with b.http(cookie=b.person) as victim:
        refused = await victim.post(
            b.url("/dashboard/logout"), headers={"Origin": f"http://127.0.0.1:{free_port()}"}
        )
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        signed_out = await victim.post(b.url("/dashboard/logout"), headers={"Origin": own(b)})
    assert signed_out.status_code == 303
    assert 'wvo_dashboard=""' in signed_out.headers["set-cookie"]


async def test_a_sign_in_through_the_proxy_is_checked_against_the_public_url(state_root: Path):
    person = token(state_root, "person", "ada")
    with http_server(state_root, "--dashboard", "--public-url", PROXIED, **QUIET) as server:
        async with server.http() as proxy:
            proxied = {"Host": "wvo.example.test"}
            for origin in ("http://wvo.example.test", "https://wvo.example.test:8443"):
                refused = await proxy.post(
                    server.base + LOGIN,
                    data={"token": person},
                    headers={**proxied, "Origin": origin},
                )
                assert refused.status_code == 403, (origin, refused.text)
                assert "set-cookie" not in refused.headers and PROXY_ORIGIN in refused.text
            signed = await proxy.post(
                server.base + LOGIN,
                data={"token": person},
                headers={**proxied, "Origin": PROXY_ORIGIN},
            )
    assert signed.status_code == 303 and cookie_attributes(signed)[0] == person


# --------------------------------------------------------------------------- in a browser


class _Attack(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest's stderr is for failures."""


@contextmanager
def attacker_site(target: str, secret: str) -> Iterator[str]:
    """A page on another port of 127.0.0.1 that posts `secret` to `target` as it loads."""
    page = (
        f'<!doctype html><form method="post" action="{target}">'
        f'<input type="hidden" name="token" value="{secret}"></form>'
        "<script>document.forms[0].submit()</script>"
    ).encode()
    handler = type("Attack", (_Attack,), {"page": page})
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = serve_in_thread(site)
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()
        thread.join()


@pytest.mark.browser
async def test_a_page_on_another_port_cannot_sign_a_browser_in(state_root: Path):
    from playwright.async_api import expect

    mallory = token(state_root, "person", "mallory")
    with http_server(state_root, "--dashboard", **QUIET) as server:
        async with browser_page(server) as page:
            with attacker_site(server.base + LOGIN, mallory) as attack:
                await page.goto(attack)
                await page.wait_for_url(server.base + LOGIN, timeout=TIMEOUT_MS)
                await expect(page.locator("body")).to_contain_text("Invalid Origin header")
            assert not [
                c for c in await page.context.cookies(server.base) if c["name"] == "wvo_dashboard"
            ]
            again = await page.goto("/dashboard")
            assert again is not None and again.status == 401
