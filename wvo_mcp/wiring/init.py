"""`wvo-mcp init`: wire wvo-mcp into the git repository you are in.

Everything is worked out before anything is written, so a refusal (a file init cannot read,
a link out of the repository) writes nothing. Run twice, it changes nothing; `--dry-run`
prints what it would write; a person's own entries are kept unless `--force`.
"""

import difflib
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wvo_mcp import providers
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.files import write_atomically
from wvo_mcp.forge import select
from wvo_mcp.git import Git, locate
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.sandbox import toolchain
from wvo_mcp.wiring import clis, edits, place

MAX_FILE_BYTES = 4 * 1024 * 1024
INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")  # Codex reads the first, Claude Code the second
# Written where Gemini CLI, OpenCode is found.
GEMINI_SETTINGS, OPENCODE_SETTINGS = ".gemini/settings.json", "opencode.json"
SHARED_FILES = (".gitignore", ".mcp.json", ".codex/config.toml", GEMINI_SETTINGS,
                OPENCODE_SETTINGS, *INSTRUCTION_FILES)  # fmt: skip
# A provider for Gemini CLI, an ACP worker (docs/autopilot.md), where it is found: Gemini
# 2.5's list prices per 1,000 tokens (prompts up to 200k).
GEMINI_PROVIDER = {
    "name": "gemini",
    "preference": 3,
    "hourly_tokens": 8_000_000,
    "daily_tokens": 80_000_000,
    "max_concurrent": 3,
    "tiers": [
        {"name": "flash", "model": "gemini-2.5-flash", "complexity": [1, 5],
         "input_cost_per_1k": 0.0003, "output_cost_per_1k": 0.0025},
        {"name": "pro", "model": "gemini-2.5-pro", "complexity": [1, 10],
         "input_cost_per_1k": 0.00125, "output_cost_per_1k": 0.01},
    ],
    "worker": {"kind": "acp", "agent": "gemini", "max_workers": 2},
}  # fmt: skip
# Which packaged provider's tiers an OpenCode provider takes, by its model API.
OPENCODE_TIERS = {"anthropic": "claude", "openai": "codex", "gemini": "gemini"}
SERVER = "wvo-mcp"
WHY_COMMIT = (
    "commit these: the autopilot's workers see only committed CLAUDE.md and AGENTS.md, and "
    "your teammates' clients read .mcp.json, .codex/config.toml and .gitignore"
)


@dataclass(frozen=True)
class Options:
    cwd: Path
    state_root: Path | None = None  # None: .wvo/ at the repository's top
    force: bool = False
    dry_run: bool = False
    goal: str | None = None  # a planner worker writes the backlog instead of the starter


@dataclass(frozen=True)
class Planned:
    path: Path  # where it is written (a link's target)
    shown: str  # the name the person knows it by, relative to the repository
    old: str | None
    change: edits.Change


@dataclass(frozen=True)
class Wiring:
    top: Path
    state_root: Path
    clis: list[clis.Cli]
    files: list[Planned]
    record: bool  # the state folder still has to be recorded in .git/config
    local_command: str | None = None  # the server's command, when `wvo-mcp` is not on PATH


def plan(options: Options, found: Sequence[clis.Cli]) -> Wiring:
    """What init would write, refused as a whole when any file cannot be merged into."""
    repo = locate(options.cwd)
    if repo is None:
        raise ValidationFailed(
            f"{options.cwd} is not in a git repository: run `wvo-mcp init` inside your "
            "project's repository (or `git init` first)"
        )
    top = repo.top
    state = (
        Path(os.path.abspath(options.state_root)) if options.state_root else top / (place.STATE_DIR)
    )
    usable = [c for c in found if c.usable]
    if options.goal is not None and not usable:
        raise ValidationFailed(
            "--goal needs a coding CLI on PATH (claude, codex, gemini or opencode, signed in) "
            "to run the planner; install one, or leave out --goal to start from the starter roadmap"
        )
    files: list[Planned] = []

    def add(path: Path, make: Callable[[str | None], edits.Change]) -> None:
        target, shown, old = _read(top, path)
        if any(p.path == target for p in files):
            return  # CLAUDE.md a link to AGENTS.md: one section serves both
        try:
            change = make(old)
        except ValidationFailed as exc:
            raise ValidationFailed(f"{shown} {exc}") from None
        files.append(Planned(target, shown, old, change))

    command = _server_command()
    # No path of this machine's: `serve` finds the state folder recorded for the repository
    # it starts in, and works on that repository.
    entry = {"command": command[0], "args": [*command[1:], "serve"], "env": {"WVO_TOOLS": "worker"}}
    if top in state.parents:
        rule = "/" + state.relative_to(top).as_posix() + "/"
        is_ignored = ignored(top, state)
        add(top / ".gitignore", lambda old: edits.ignore_rule(old, rule, is_ignored))
    add(top / ".mcp.json", lambda old: edits.server_json(old, entry, options.force))
    # Required: `codex exec` then waits for the server before its first model request (it
    # does not otherwise), and a server that cannot start is said, not silently missing.
    codex = {**entry, "required": True}
    add(top / ".codex" / "config.toml", lambda old: edits.server_toml(old, codex, options.force))
    if any(c.usable and c.kind == "gemini" for c in found):  # its MCP servers, as .mcp.json
        add(top / GEMINI_SETTINGS, lambda old: edits.server_json(old, entry, options.force))
    if any(c.usable and c.kind == "opencode" for c in found):  # its own shape, under `mcp`
        own = {"type": "local", "command": [*command, "serve"], "environment": entry["env"]}
        add(top / OPENCODE_SETTINGS, lambda old: edits.server_json(old, own, options.force, "mcp"))
    section = _data("agents-section.md")
    for name in INSTRUCTION_FILES:
        add(top / name, lambda old: edits.marked_section(old, section, options.force))
    if usable:
        text = providers_text(usable)
        add(state / "providers.yaml", lambda old: _loadable(edits.providers_file(old, text)))
    if options.goal is None:
        starter = _data("starter-roadmap.yaml")
        add(state / "roadmap.yaml", lambda old: edits.new_file(old, starter, "starter tasks"))
    local = command[0] if command[0] != SERVER else None
    return Wiring(top, state, list(found), files, place.recorded(top) != state, local)


def apply(wiring: Wiring) -> None:
    for planned in wiring.files:
        if planned.change.text is not None:
            _write(planned.path, planned.change.text)
    wiring.state_root.mkdir(parents=True, exist_ok=True)
    if wiring.record:
        place.record(wiring.top, wiring.state_root)


def describe(wiring: Wiring, dry_run: bool) -> list[str]:
    """One line per file (and for a dry run, what would be written), for the person."""
    lines = [f"repository {wiring.top}; state folder {wiring.state_root}"]
    for cli in wiring.clis:
        lines.append(f"  found {cli.note}" if cli.usable else f"  skipped: {cli.note}")
    if not any(c.usable for c in wiring.clis):
        lines.append(
            "  no coding CLI (claude, codex, gemini, opencode) on PATH: wire the agents you run "
            "yourself, or install one and run init again so the autopilot can launch it"
        )
    for planned in wiring.files:
        lines.append(f"  {planned.shown}: {planned.change.note}")
        if dry_run and planned.change.text is not None:
            lines += [f"    {line}" for line in _diff(planned)]
    if wiring.record:
        verb = "would record" if dry_run else "recorded"
        lines.append(f"  .git/config: {verb} {place.KEY} (commands run here find the state)")
    return lines


def toolchain_found(top: Path, state_root: Path) -> str:
    """The toolchain folders checks and workers will see, found with no configuration."""
    repo = locate(top)
    if repo is None:
        return toolchain.Toolchain().describe()
    git = Git(repo, repo.top)
    found = toolchain.find(repo.top, toolchain.Spec(), git.ignored(toolchain.FOUND), [state_root])
    return found.describe()


def uncommitted(top: Path) -> list[str]:
    """The files init writes for everyone (SHARED_FILES) that git has not committed as they
    are now: new or changed, and not ignored."""
    found = place.git(
        top, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *SHARED_FILES
    )
    listed = {entry[3:] for entry in found.stdout.split("\0") if len(entry) > 3}
    return [name for name in SHARED_FILES if name in listed]


def landing(top: Path) -> str | None:
    """How a team lands through its forge, when `origin` is on github.com or on a GitLab (by
    its host, forge/select.py's rule): GitHub's pull requests or GitLab's merge requests.
    None for another host, or no origin."""
    url = place.git(top, "remote", "get-url", "origin").stdout.strip()
    try:
        located = select.locate(url) if url else None
    except ValidationFailed:
        return None
    if located is None or (located.kind == "github" and located.host != "github.com"):
        return None
    head = place.git(top, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD")
    branch = place.git(top, "symbolic-ref", "-q", "--short", "HEAD").stdout.strip() or "main"
    onto = head.stdout.strip() if head.stdout.startswith("origin/") else f"origin/{branch}"
    via, what = (
        ("merge-request", "GitLab's merge requests")
        if located.kind == "gitlab"
        else ("pull-request", "GitHub's pull requests")
    )
    # The identity the fleet acts as: the forge's own for tools that act at scale.
    token = (
        "a project or group access token (a bot user of its own) in WVO_FORGE_TOKEN"
        if located.kind == "gitlab"
        else "a GitHub App (--github-app-id, --github-app-key), or a token"
    )
    return (
        f"to land through {what} (a protected branch), as {token}: `wvo-mcp doctor --onto "
        f"{onto} --via {via}` checks it, then `wvo-mcp autopilot --merge merge --onto {onto} "
        f"--via {via}` (docs/forge.md)"
    )


def providers_text(found: Sequence[clis.Cli], env: Mapping[str, str] = os.environ) -> str:
    """The packaged providers, only those whose CLI is here, each naming its executable."""
    packaged = resources.files("wvo_mcp").joinpath("data", "providers.yaml").read_text()
    document = yaml.safe_load(packaged)
    by_kind = {c.kind: c for c in found}
    kept = []
    for provider in [*document["providers"], GEMINI_PROVIDER, _opencode(document, env)]:
        worker = provider.get("worker", {})
        cli = by_kind.get(worker.get("agent") or worker.get("kind"))
        if cli is not None:
            kept.append({**provider, "worker": {**worker, "executable": str(cli.path)}})
    document["providers"] = kept
    text = (
        "# Providers for this repository, written by `wvo-mcp init` from the coding CLIs it\n"
        "# found (docs/routing.md; `wvo-mcp providers` shows what is in force). Yours to edit.\n"
        + yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
    )
    providers.parse(text, "providers.yaml")  # what init writes must load
    return text


def _opencode(document: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A provider for OpenCode, an ACP worker, on the model API whose key is here, with the
    tiers and prices of that API's packaged provider."""
    api = clis.opencode_api(env)
    like = OPENCODE_TIERS[api]
    base = next(p for p in [*document["providers"], GEMINI_PROVIDER] if p["name"] == like)
    worker = {"kind": "acp", "agent": "opencode", "api": api, "max_workers": 2}
    return {**base, "name": "opencode", "preference": 4, "worker": worker}


def _loadable(change: edits.Change) -> edits.Change:
    """A providers file init changed, refused unless it loads."""
    if change.text is not None:
        providers.parse(change.text, "providers.yaml")
    return change


def _server_command() -> list[str]:
    """How a client starts wvo-mcp: `wvo-mcp` from PATH, as on a teammate's machine or in
    CI; where it is not on PATH, this very wvo-mcp by its path (this machine's only): its
    `wvo-mcp` script, else this Python with the package."""
    if shutil.which(SERVER) is not None:
        return [SERVER]
    script = Path(sys.argv[0])
    if script.name == SERVER and os.access(script, os.X_OK):
        return [os.path.abspath(script)]
    return [sys.executable, "-P", "-m", "wvo_mcp"]


def shared(wiring: Wiring, uncommitted: Sequence[str]) -> tuple[list[str], list[str]]:
    """Of the files init wrote for everyone and git has not committed, those to commit and
    those that name this machine's wvo-mcp (while it is not on PATH) and stay per machine."""
    local = {".mcp.json", ".codex/config.toml"} if wiring.local_command else set()
    return [f for f in uncommitted if f not in local], [f for f in uncommitted if f in local]


def _read(top: Path, path: Path) -> tuple[Path, str, str | None]:
    """A person's file: where writing it lands, its name as shown, and its text (None when
    it does not exist). A link is followed only to a file inside the repository."""
    shown = os.path.relpath(path, top)
    target = path.resolve()
    if target != path and top.resolve() not in target.parents:
        raise ValidationFailed(
            f"{shown} is a link to {target}, outside the repository; init writes only "
            "inside it: replace the link with a file, or wire that file by hand"
        )
    if not target.exists():
        return target, shown, None
    if not target.is_file():
        raise ValidationFailed(f"{shown} is not a regular file; move it aside and run again")
    if target.stat().st_size > MAX_FILE_BYTES:
        raise ValidationFailed(f"{shown} is over {MAX_FILE_BYTES} bytes; init leaves it alone")
    try:
        return target, shown, target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(f"{shown} is not UTF-8 text; init leaves it alone") from None


def _write(path: Path, text: str) -> None:
    """Atomically, keeping the file's permissions (a new one gets the umask's)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    write_atomically(path, text)
    os.chmod(path, mode)


def ignored(top: Path, state: Path) -> bool:
    probe = (state / "orchestrator.db").relative_to(top).as_posix()
    return place.git(top, "check-ignore", "-q", "--", probe).returncode == 0


def _diff(planned: Planned) -> list[str]:
    if planned.old is None:
        return (planned.change.text or "").splitlines()
    return list(
        difflib.unified_diff(
            planned.old.splitlines(),
            (planned.change.text or "").splitlines(),
            planned.shown,
            planned.shown,
            lineterm="",
        )
    )


def _data(name: str) -> str:
    return resources.files("wvo_mcp").joinpath("data", name).read_text()


async def seed(settings: Settings, roadmap_file: Path, by: str) -> int:
    """Import the roadmap into a database without tasks (so a second run adds nothing);
    how many were imported."""
    from wvo_mcp import roadmap

    specs = roadmap.load(roadmap_file)
    orchestrator = await Orchestrator.open(settings)
    try:
        if (await orchestrator.list_tasks(limit=1)).tasks:
            return 0
        return len((await orchestrator.create_tasks(specs, by)).created)
    finally:
        await orchestrator.close()


async def plan_goal(settings: Settings, goal: str, say: Callable[[str], None]) -> None:
    """A planner worker (the autopilot's, in its sandbox) turns the goal into tasks."""
    from wvo_mcp.autopilot import loop, slots

    orchestrator = await Orchestrator.open(settings)
    try:
        options = slots.Options(goal=goal, plan_only=True)
        await loop.Autopilot(orchestrator, settings, options, say=say).run()
    finally:
        await orchestrator.close()
