"""How the house's modules import and reach each other: the linter sees every import, a
`TYPE_CHECKING` one included (a circle hidden under it stays a circle), and no module
reaches into another's private names (issue 71: `pull_requests.py` called eleven private
methods of the lander that imported it)."""

import ast
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOUSE = ROOT / "wvo_mcp"

# Private names reached from outside the module that defines them, each for a reason: the
# name, and why. Keyed by name, not by file, so moving a module moves nothing here.
ALLOWED: dict[str, str] = {
    "_exit": "os._exit, the documented exit of a process whose cleanup must not run",
    "_actions": "argparse keeps a parser's options only in its private _actions",
    "_tool_manager": "the MCP SDK's server lists its registered tools only through it",
    "_tools": "the MCP SDK's tool manager takes a tool already derived (edge/calls.py: once a "
    "process, not once a server) only into its _tools",
    "_run_exitfuncs": "atexit runs what a process registered only at the interpreter's shutdown "
    "or through it: a forked server runs them, then ends without the rest (cli/warm.py)",
    "_lowlevel_server": "the MCP SDK's server: what its run_stdio_async serves, and where "
    "request handlers are installed",
    "_no_notes_for": "a flag of a holder's answer unseen by its agent (models/claims.py): "
    "kept off the wire, set where the claim is made and read by edge/calls.py to shape the answer",
    "_took_over_expired": "a flag of the claim's answer unseen by its agent (models/claims.py): "
    "kept off the wire, set by the claim's transaction and read by edge/calls.py",
    "_lost": "a flag of the claim's answer unseen by its agent (models/claims.py): set when "
    "another write beat its grant and read by orchestrator/claims.py to claim again",
}


def test_the_linter_counts_type_checking_imports(tmp_path: Path) -> None:
    """A circle one side hides under TYPE_CHECKING is a circle (the landing package's was):
    the session counts those imports, and a contract finds circles between siblings
    anywhere in the house, which the layers contract alone does not look inside."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert not config.get("exclude_type_checking_imports", False)
    assert any(
        c["type"] == "acyclic_siblings" and c["ancestors"] == ["wvo_mcp"]
        for c in config["contracts"]
    )
    # The same session and contract type over a two-module package whose circle is hidden so.
    package = tmp_path / "circle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circle import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from circle import a\n"
    )
    session = "".join(
        f"{k} = {v!r}\n".replace("True", "true").replace("False", "false")
        for k, v in config.items()
        if k not in ("root_package", "root_packages", "contracts")
    )
    (tmp_path / "lint.toml").write_text(
        f'[tool.importlinter]\nroot_package = "circle"\n{session}\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "circle"\ntype = "acyclic_siblings"\nancestors = ["circle"]\n'
    )
    lint = Path(sys.executable).parent / "lint-imports"
    found = subprocess.run(
        [str(lint), "--no-logo", "--no-cache", "--config", "lint.toml"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 1, found.stdout + found.stderr
    assert "BROKEN" in found.stdout


def _defined(tree: ast.Module) -> set[str]:
    """The names a module defines: its functions, classes and assignments at any depth, and
    the attributes its methods set on self or cls."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
    return names


def _reaches() -> dict[str, list[str]]:
    """Each private name a module of the house reaches on something not its own (`x._name`,
    x not self or cls, read or written) that the module does not define: where."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(HOUSE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        own = _defined(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") and node.attr.endswith("__"):
                continue  # Python's own (__name__, __dict__)
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own:
                where = f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
                found[node.attr].append(where)
    return found


def test_no_module_reaches_into_another_s_private_names() -> None:
    """A name with a leading underscore is its module's own: another module that needs it
    gets a public name for it (as the landing steps did), or an entry in ALLOWED saying why
    it cannot."""
    found = _reaches()
    unexplained = sorted(w for name, sites in found.items() if name not in ALLOWED for w in sites)
    assert not unexplained, "\n".join(unexplained)
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"ALLOWED names no module reaches any more: {stale}"
