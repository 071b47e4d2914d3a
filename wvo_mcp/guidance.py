"""Directives: Markdown guidance for agents. A project's own `directives/` folder wins over
the packaged copies, file by file, so a team can edit or add them; files are re-read on
every use, so edits show without a restart."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from wvo_mcp.errors import NotFound

PACKAGED = Path(str(resources.files("wvo_mcp"))) / "data" / "directives"


@dataclass(frozen=True)
class Directive:
    name: str  # work_loop for work-loop.md
    title: str  # the first Markdown heading
    path: Path

    def text(self) -> str:
        return self.path.read_text()


def _title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ")


def available(workspace_root: Path) -> dict[str, Directive]:
    found: dict[str, Directive] = {}
    for folder in (PACKAGED, workspace_root / "directives"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            name = path.stem.replace("-", "_")
            found[name] = Directive(name, _title(path), path)
    return found


def get(workspace_root: Path, name: str) -> Directive:
    directives = available(workspace_root)
    if name not in directives:
        raise NotFound(f"no directive {name!r}; there are: {', '.join(sorted(directives))}")
    return directives[name]
