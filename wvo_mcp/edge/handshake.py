"""Writes the answers a stdio server gives before any tool call, for cli/front.py.

The answers a stdio server gives before any tool is called, as a table (data/handshake.json)
that cli/front.py answers from while the server is still importing: `initialize` for each
handshake revision a client may ask for, and per tool profile (WVO_TOOLS) the lists a
client asks for next (tools, prompts, resources and their templates). Made by the server
itself, over its own stdio edge, so the table is what it would have answered;
tests/integration/test_front.py fails when the table and the server disagree.

    python -m wvo_mcp.edge.handshake        # writes data/handshake.json anew
"""

import json
import logging
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from wvo_mcp.config import Settings
from wvo_mcp.edge import stdio
from wvo_mcp.edge.server import build_server

TABLE = Path(__file__).parent.parent / "data" / "handshake.json"
PROFILES = ("all", "worker", "planner", "operator")
# Everything a client lists before its first call (Claude Code counts a server connected
# once all four are answered). The prompts are the packaged directives': cli/front.py
# answers them only when those are all the server would list.
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
CLIENT = {"name": "wvo-mcp handshake table", "version": "1"}


async def _answers(settings: Settings, version: str) -> dict[str, Any]:
    """What a server of `settings` answers a client that asks for `version`, by method."""
    asked = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize",
         "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        *({"jsonrpc": "2.0", "id": n, "method": method} for n, method in enumerate(LISTS, 1)),
    ]  # fmt: skip
    said: dict[int, Any] = {}
    answered = anyio.Event()

    async def lines() -> AsyncGenerator[bytes | None, None]:
        for message in asked:
            yield json.dumps(message).encode() + b"\n"
        with anyio.fail_after(30):
            await answered.wait()  # every request answered: then stdin ends

    async def write(data: bytes) -> None:
        reply = json.loads(data)
        said[reply["id"]] = reply["result"]
        if len(said) == len(asked) - 1:
            answered.set()

    lowlevel = build_server(settings)._lowlevel_server
    async with stdio.session(lines(), write) as (read, written):
        await lowlevel.run(read, written, lowlevel.create_initialization_options())
    return {"initialize": said[0], **{m: said[n] for n, m in enumerate(LISTS, 1)}}


async def table() -> dict[str, Any]:
    """The whole table: {"initialize": {revision: result}, "lists": {profile: {method:
    result}}}; the lists are the same whichever revision was asked for (checked here)."""
    found: dict[str, Any] = {"initialize": {}, "lists": {}}
    with tempfile.TemporaryDirectory() as state:
        for version in HANDSHAKE_PROTOCOL_VERSIONS:
            for profile in PROFILES:
                # A workspace in no repository: no committed directive is listed.
                env = {"WVO_STATE_ROOT": state, "WVO_WORKSPACE_ROOT": state,
                       "WVO_TOOLS": profile, "WVO_OTEL_ENABLED": "0",
                       "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0"}  # fmt: skip
                said = await _answers(Settings.from_env(env), version)
                found["initialize"][version] = said.pop("initialize")
                if found["lists"].setdefault(profile, said) != said:
                    raise AssertionError(f"{profile}'s lists differ under {version}")
    return found


def write() -> None:
    logging.disable(logging.INFO)  # the servers' start-up lines
    TABLE.write_text(json.dumps(anyio.run(table), separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
