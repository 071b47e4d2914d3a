"""The README and docs/ document everything the server and CLI offer, and mcp.json really
starts it."""

import json
import re

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ROOT
from wvo_mcp.autopilot import commands
from wvo_mcp.cli import parser
from wvo_mcp.rules import agents

pytestmark = pytest.mark.anyio
README = (ROOT / "README.md").read_text()
DOCS = "\n".join([README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))])


def _documented_in_table(name: str, text: str = DOCS) -> bool:
    return re.search(rf"^\| `{re.escape(name)}[` ]", text, re.MULTILINE) is not None


async def test_every_tool_is_in_the_readme_table(state_root):
    entry = json.loads((ROOT / "mcp.json").read_text())["mcpServers"]["wvo"]
    params = StdioServerParameters(
        command=str(ROOT / entry["command"]),
        args=entry["args"],
        cwd=str(ROOT),
        env={**entry["env"], "WVO_STATE_ROOT": str(state_root)},
    )
    async with Client(params, read_timeout_seconds=30) as client:
        tools = (await client.list_tools()).tools
    names = sorted(tool.name for tool in tools)
    assert names, "mcp.json's server listed no tools"
    missing = [name for name in names if not _documented_in_table(name, README)]
    assert not missing, f"tools missing from the README tool table: {missing}"


def test_every_cli_command_is_in_the_readme():
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if not _documented_in_table(name)]
    assert not missing, f"CLI commands missing from the README and docs/: {missing}"


def test_every_environment_variable_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "wvo_mcp").rglob("*.py"))
    variables = sorted(set(re.findall(r'"(WVO_[A-Z_]+)"', source)))
    assert "WVO_STATE_ROOT" in variables
    missing = [name for name in variables if f"`{name}`" not in DOCS]
    assert not missing, f"environment variables missing from the README and docs/: {missing}"


def test_links_between_the_docs_lead_somewhere():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_each_worker_kinds_model_endpoint_variable_is_explained_with_the_egress_proxy():
    autopilot = (ROOT / "docs" / "autopilot.md").read_text()
    reach = autopilot[autopilot.index("- **reaches**") : autopilot.index("- **acts**")]
    for name in (agents.APIS[api][0] for api in commands.NATIVE_API.values()):
        assert f"`{name}`" in reach, f"docs/autopilot.md does not say what {name} opens"
    assert "egress proxy" in reach
