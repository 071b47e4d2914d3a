"""The module map in docs/architecture.md, made from each module's summary line and the layers.

    python -m scripts.module_map            # rewrites the map between its markers
    python -m scripts.module_map --check    # exits 1, showing the difference, if it is stale

Every module under wvo_mcp/ opens with a docstring whose first line says its one job (at most
100 characters, ending in ".", then a blank line), and every module but a package's
`__init__` sits in a layer of pyproject.toml's layers contract ([tool.importlinter]). The map
lists the layers top to bottom and under each its modules with their summary lines, so it is
made, never written by hand; tests/test_docs.py fails when it differs from what this makes.
"""

import argparse
import ast
import difflib
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "wvo_mcp"
DOC = Path("docs/architecture.md")
BEGIN = (
    "<!-- module map: begin (python -m scripts.module_map writes it; "
    "tests/test_docs.py checks it) -->"
)
END = "<!-- module map: end -->"
LONGEST = 100


def summary(path: Path) -> str:
    """The first line of a module's docstring; raises ValueError, naming the module, if it is
    missing, longer than LONGEST, not a sentence, or not followed by a blank line."""
    name = _shown(path)
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path)), clean=False)
    if not doc or not doc.strip():
        raise ValueError(f"{name} has no docstring: open it with a one-line summary of its job")
    lines = doc.split("\n")
    first = lines[0]
    if (
        len(first) > LONGEST
        or not first.endswith(".")
        or first != first.strip()
        or (len(lines) > 1 and lines[1].strip())
    ):
        raise ValueError(
            f"{name}: open its docstring with a one-line summary of its job (at most {LONGEST} "
            f'characters, ending in ".", then a blank line); it opens {first[:50]!r}'
        )
    return first


def layers(pyproject: Path | None = None) -> list[list[str]]:
    """The layers contract's layers, top to bottom, each a list of its module names (the
    entries joined by ":" or "|" in one layer string)."""
    config = tomllib.loads((pyproject or ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    found = [c for c in contracts if c.get("type") == "layers" and "containers" not in c]
    if len(found) != 1:
        raise ValueError("pyproject.toml: expected one layers contract without containers")
    listed = found[0]["layers"]
    assert isinstance(listed, list)
    return [
        [name.strip() for part in str(layer).split(":") for name in part.split("|")]
        for layer in listed
    ]


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(path)


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer_of(module: str, entries: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The entry naming this module or the package nearest above it (the longest name)."""
    named = [(i, e) for i, e in entries if module == e or module.startswith(e + ".")]
    return max(named, key=lambda found: len(found[1])) if named else None


def render(root: Path = ROOT) -> str:
    """The map: the package's summary, then each layer with its modules' summary lines."""
    top = root / PACKAGE
    order = layers(root / "pyproject.toml")
    entries = [(i, entry) for i, layer in enumerate(order) for entry in layer]
    placed: dict[tuple[int, str], list[Path]] = {}
    for path in sorted(top.rglob("*.py"), key=lambda p: _key(p, top)):
        where = _layer_of(_module(path, root), entries)
        if path.name == "__init__.py":
            # A package is listed with its layer; one that spans layers has no line of its own.
            if where is not None and where[1] != _module(path, root):
                placed.setdefault(where, []).append(path)
            continue
        if where is None:
            raise ValueError(
                f"{path.relative_to(root).as_posix()} is in no layer of [tool.importlinter]: "
                "add it (or its package) to a layer in pyproject.toml"
            )
        placed.setdefault(where, []).append(path)
    out = [f"`{PACKAGE}/`: {summary(top / '__init__.py')}", ""]
    for i, layer in enumerate(order):
        out += [f"**{i + 1}. {' : '.join(f'`{_short(e)}`' for e in layer)}**", ""]
        for entry in layer:
            package = top.joinpath(*entry.split(".")[1:])
            inside = (package / "__init__.py").exists()
            if inside:
                out.append(f"- `{_rel(package, top)}/`: {summary(package / '__init__.py')}")
            for path in placed.get((i, entry), []):
                depth = len(_key(path, top)) - len(_key(package, top)) if inside else 0
                out.append(f"{'  ' * depth}- `{_name(path, top)}`: {summary(path)}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _key(path: Path, top: Path) -> tuple[str, ...]:
    """Where a module sorts: a package's `__init__` as its folder, before what is in it."""
    parts = path.relative_to(top).parts
    return parts[:-1] if parts and parts[-1] == "__init__.py" else parts


def _name(path: Path, top: Path) -> str:
    return _rel(path.parent, top) + "/" if path.name == "__init__.py" else _rel(path, top)


def _short(entry: str) -> str:
    return entry.removeprefix(PACKAGE + ".")


def _rel(path: Path, top: Path) -> str:
    return path.relative_to(top).as_posix()


def split(text: str) -> tuple[str, str, str]:
    """The doc cut around its map: up to the begin marker's line, the map, from the end marker."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{DOC}: expected one {BEGIN!r} line before one {END!r} line")
    head, rest = text.split(BEGIN + "\n", 1)
    block, tail = rest.split(END, 1)
    return head + BEGIN + "\n", block, END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.module_map")
    parser.add_argument("--check", action="store_true", help="exit 1 if the map is stale")
    args = parser.parse_args(argv)
    doc = ROOT / DOC
    try:
        head, block, tail = split(doc.read_text())
        made = "\n" + render() + "\n"
    except ValueError as refused:
        print(refused, file=sys.stderr)
        return 1
    if args.check:
        if block == made:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                block.splitlines(keepends=True),
                made.splitlines(keepends=True),
                f"{DOC} (now)",
                f"{DOC} (made from the modules)",
            )
        )
        print(f"{DOC}'s module map is stale: run python -m scripts.module_map")
        return 1
    doc.write_text(head + made + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
