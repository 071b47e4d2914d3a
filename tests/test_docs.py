"""The README and docs/ document everything the server and CLI offer, and mcp.json really
starts it."""

import ast
import difflib
import functools
import json
import re

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from scripts import module_map
from tests.conftest import ROOT
from wvo_mcp.autopilot import worker_config
from wvo_mcp.cli import parser
from wvo_mcp.rules import acp_agents

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
    for name in (acp_agents.APIS[api][0] for api in worker_config.NATIVE_API.values()):
        assert f"`{name}`" in reach, f"docs/autopilot.md does not say what {name} opens"
    assert "egress proxy" in reach


def test_the_module_map_is_current():
    try:
        made = module_map.render()
    except ValueError as refused:
        pytest.fail(f"{refused}; then run python -m scripts.module_map")
    _, block, _ = module_map.split((ROOT / module_map.DOC).read_text())
    changed = [
        line
        for line in difflib.unified_diff(
            block.strip("\n").splitlines(), made.strip("\n").splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert not changed, (
        f"{module_map.DOC}'s module map is stale (- in the doc, + made from the modules): run "
        "python -m scripts.module_map\n" + "\n".join(changed[:40])
    )


def test_every_module_opens_with_a_summary_line():
    problems = []
    for path in sorted((ROOT / "wvo_mcp").rglob("*.py")):
        try:
            module_map.summary(path)
        except ValueError as refused:
            problems.append(str(refused))
    assert not problems, "\n".join(problems)


_CARRIED_OUT_BY = re.compile(r"Carried out by\s+((?:`[^`]+`(?:,\s+|\s+and\s+)?)+)")


def _docstring(path):
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def test_every_rule_names_its_driver_and_back():
    problems = []
    for rule in sorted((ROOT / "wvo_mcp" / "rules").glob("*.py")):
        if rule.name == "__init__.py":
            continue
        name = f"wvo_mcp/rules/{rule.name}"
        said = _CARRIED_OUT_BY.search(_docstring(rule))
        if said is None:
            problems.append(f'{name} names no driver: add "Carried out by `wvo_mcp/....py`."')
            continue
        for driver in re.findall(r"`([^`]+)`", said.group(1)):
            if not (ROOT / driver).is_file():
                problems.append(f"{name} is carried out by {driver}, which does not exist")
            elif not re.search(rf"\brules/{rule.stem}\b", _docstring(ROOT / driver)):
                problems.append(
                    f"{driver} carries out {name}, and its docstring does not say so: "
                    f'add "Carries out `rules/{rule.name}`."'
                )
    assert not problems, "\n".join(problems)


def test_the_scenarios_a_forge_cannot_pass_are_those_docs_forge_lists():
    """The scenario suites' `cannot` marks (tests/forge/both.py) are docs/forge.md's."""
    from tests.forge import both

    text = (ROOT / "docs" / "forge.md").read_text()
    listed = text.split("<!-- cannot: begin -->\n", 1)[1].split("\n<!-- cannot: end -->", 1)[0]
    assert listed == both.cannot_listed()


INDEX_ROWS_AT_LEAST = 40  # the behaviours a newcomer asks about most, every tool among them
_ACTS = re.compile(r"`([a-z_/]+\.py):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)`")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _where_it_happens() -> str:
    """docs/architecture.md's index of behaviours, from its heading to the next one."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    start = text.index("\n## Where it happens")
    return text[start : text.index("\n## ", start + 1)]


def _rows(index: str) -> list[tuple[str, str]]:
    """(behaviour, where it acts) for each row of the index's tables."""
    found = []
    for line in index.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and not set(cells[0]) <= set("-: "):
            found.append((cells[0], cells[1]))
    return [row for row in found if row != ("Behaviour", "Where it acts")]


def _defines(path: str, name: str) -> bool:
    """`wvo_mcp/path` defines `name`: a function or class anywhere in it (the tools are
    closures), or a method `Class.method`."""
    return name in _definitions(path)


@functools.cache
def _definitions(path: str) -> frozenset[str]:
    """What `_defines` finds in `wvo_mcp/path`: each file parsed once for its rows."""
    module = ROOT / "wvo_mcp" / path
    if not module.is_file():
        return frozenset()
    nodes = [n for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, _DEFINITIONS)]
    methods = {
        f"{n.name}.{m.name}"
        for n in nodes
        if isinstance(n, ast.ClassDef)
        for m in n.body
        if isinstance(m, _DEFINITIONS)
    }
    return frozenset({n.name for n in nodes} | methods)


def test_where_it_happens_names_functions_that_exist():
    rows = _rows(_where_it_happens())
    assert len(rows) >= INDEX_ROWS_AT_LEAST, f"the index has {len(rows)} behaviours"
    problems = []
    for behaviour, where in rows:
        named = _ACTS.findall(where)
        if not named:
            problems.append(f"{behaviour!r} names no `path.py:function`")
        problems += [
            f"{behaviour!r}: wvo_mcp/{path} defines no {name}"
            for path, name in named
            if not _defines(path, name)
        ]
    assert not problems, "docs/architecture.md, Where it happens:\n" + "\n".join(problems)


def test_where_it_happens_has_every_tool_and_command(tmp_path):
    from wvo_mcp.config import Settings
    from wvo_mcp.edge import access
    from wvo_mcp.edge.server import build_server

    settings = Settings(state_root=tmp_path, otel_enabled=False)
    server = build_server(settings, http=access.HttpAccess(auth=None))  # every tool, HTTP's too
    tools = sorted(tool.name for tool in server._tool_manager.list_tools())
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    said = " ".join(behaviour for behaviour, _ in _rows(_where_it_happens()))
    missing = [f"tool {t}" for t in tools if f"`{t}`" not in said]
    missing += [f"command {c}" for c in commands if f"`wvo-mcp {c}" not in said]
    assert len(tools) > 20 and len(commands) > 20
    assert not missing, f"docs/architecture.md, Where it happens, lacks: {missing}"
