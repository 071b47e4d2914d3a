"""An HTTP server's stderr is quiet by default: nothing at all from `serve --http`, and never
the SDK's transport lines (`Terminating session`, `StreamableHTTP session manager ...`) unless
WVO_LOG_LEVEL asks for INFO."""

from pathlib import Path

import pytest

from tests.conftest import PROTOCOL_MODES
from tests.http.conftest import HttpServer, connect, http_server, token

pytestmark = [pytest.mark.anyio, pytest.mark.process]

SDK_LINES = ("Terminating session", "StreamableHTTP session manager", "Created new transport")


async def some_requests(server: HttpServer, secret: str) -> None:
    """Both protocol revisions' requests, the notification the SDK's transport serves (and
    logs the end of), and a GET."""
    for mode in PROTOCOL_MODES:
        async with connect(server, secret, mode) as agent:
            assert (await agent.call("plan_next"))["agent_id"] == "claude-1"
    async with server.http(secret) as http:
        assert (await http.get(server.url)).status_code == 405


async def test_serve_http_writes_nothing_to_stderr_by_default(state_root: Path) -> None:
    secret = token(state_root, "agent", "claude-1")
    with http_server(state_root) as server:
        await some_requests(server, secret)
    assert server.process.returncode is not None
    assert server.stderr.read_text() == ""


async def test_with_info_the_requests_and_the_sdk_lines_are_logged(state_root: Path) -> None:
    secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, WVO_LOG_LEVEL="info") as server:
        await some_requests(server, secret)
    said = server.stderr.read_text()
    assert '"GET /mcp HTTP/1.1" 405' in said, said
    assert "INFO Terminating session: None" in said, said
    assert "INFO StreamableHTTP session manager started" in said, said
    assert "INFO StreamableHTTP session manager shutting down" in said, said


async def test_the_dashboard_command_never_shows_the_sdk_lines_by_default(
    state_root: Path,
) -> None:
    """`wvo-mcp dashboard` is `serve --http --dashboard` for a person at a terminal."""
    secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, subcommand=("dashboard",)) as server:
        await some_requests(server, secret)
    said = server.stderr.read_text()
    assert not [line for line in said.splitlines() if any(s in line for s in SDK_LINES)], said
