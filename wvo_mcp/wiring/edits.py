"""What `wvo-mcp init` writes into a person's files, worked out from their current text: pure.

Every edit keeps what the person wrote. An entry of ours already there is kept as it is (the
person may have changed it on purpose); `force` replaces that entry, and only it. A file that
cannot be read as what its name says is refused, never guessed at or replaced.
"""

import json
from dataclasses import dataclass
from typing import Any

import tomlkit
import tomlkit.exceptions
import yaml
from tomlkit.items import Table

from wvo_mcp.errors import ValidationFailed

SERVER = "wvo"  # our entry's name in .mcp.json and config.toml
BEGIN = "<!-- wvo-mcp:begin (written by `wvo-mcp init`; yours to edit) -->"
END = "<!-- wvo-mcp:end -->"


@dataclass(frozen=True)
class Change:
    text: str | None  # the file's whole new text; None: nothing to write
    note: str  # what happens, for the person


# What an earlier `init` put in a server's env: this machine's paths, now left out.
_INIT_ENV = {"WVO_STATE_ROOT", "WVO_WORKSPACE_ROOT", "WVO_TOOLS"}


def written_by_init(entry: object) -> bool:
    """An entry an earlier `init` wrote (its `serve`, with only the variables it set):
    brought up to date without --force; a person's own entry is kept."""
    if not isinstance(entry, dict):
        return False
    env, args = entry.get("env") or {}, entry.get("args")
    return (
        isinstance(args, list) and args[-1:] == ["serve"] and isinstance(env, dict)
        and set(env) <= _INIT_ENV and "WVO_STATE_ROOT" in env
    )  # fmt: skip


def server_json(
    existing: str | None, entry: dict[str, Any], force: bool, key: str = "mcpServers"
) -> Change:
    """`.mcp.json` (Claude Code's project servers) with our server in `mcpServers`; Gemini
    CLI's settings alike, OpenCode's `opencode.json` under `mcp`."""
    if existing is None:
        return Change(_json({key: {SERVER: entry}}), "created with the wvo server")
    try:
        found = json.loads(existing)
    except ValueError as exc:
        raise ValidationFailed(
            f"is not valid JSON ({exc}); fix it or move it aside, and run init again "
            "(init adds its server to the file, it never replaces a file it cannot read)"
        ) from None
    servers = found.get(key, {}) if isinstance(found, dict) else None
    if not isinstance(servers, dict):
        raise ValidationFailed(
            f'is not an MCP configuration: a JSON object whose "{key}" is an object was '
            "expected; fix it or move it aside, and run init again"
        )
    if servers.get(SERVER) == entry:
        return Change(None, "already has the wvo server")
    if SERVER in servers and not force and not written_by_init(servers[SERVER]):
        return Change(None, 'has a "wvo" server of its own: kept (--force replaces it)')
    replaced = SERVER in servers
    found[key] = {**servers, SERVER: entry}
    return Change(_json(found), "replaced its wvo server" if replaced else "added the wvo server")


def server_toml(existing: str | None, entry: dict[str, Any], force: bool) -> Change:
    """`.codex/config.toml` with our server as `[mcp_servers.wvo]`, comments and all kept."""
    try:
        document = tomlkit.parse(existing or "")
    except tomlkit.exceptions.ParseError as exc:
        raise ValidationFailed(
            f"is not valid TOML ({exc}); fix it or move it aside, and run init again"
        ) from None
    servers = document.get("mcp_servers")
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        document["mcp_servers"] = servers
    elif not isinstance(servers, Table):
        raise ValidationFailed(
            "has `mcp_servers` as something other than a table; write it as "
            "[mcp_servers.NAME] tables, and run init again"
        )
    current = servers.get(SERVER)
    if current is not None and current.unwrap() == entry:
        return Change(None, "already has the wvo server")
    if current is not None and not force and not written_by_init(current.unwrap()):
        return Change(None, "has an [mcp_servers.wvo] of its own: kept (--force replaces it)")
    table = tomlkit.table()
    for key, value in entry.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            table[key] = inline
        else:
            table[key] = value
    servers[SERVER] = table
    if existing is None:
        return Change(tomlkit.dumps(document), "created with the wvo server")
    done = "replaced its wvo server" if current is not None else "added the wvo server"
    return Change(tomlkit.dumps(document), done)


def marked_section(existing: str | None, section: str, force: bool) -> Change:
    """A Markdown file with our section between markers: created, or appended once."""
    block = f"{BEGIN}\n{section.strip()}\n{END}\n"
    if existing is None:
        return Change(block, "created with the work-loop section")
    start = existing.find(BEGIN)
    end = existing.find(END, start)
    if start < 0:
        # One blank line between the person's text and ours.
        trailing = len(existing) - len(existing.rstrip("\n"))
        spacer = "\n" * max(0, 2 - trailing) if existing.strip() else ""
        return Change(existing + spacer + block, "appended the work-loop section")
    if end < 0:
        raise ValidationFailed(
            f"has the line {BEGIN!r} without {END!r} after it; restore the end marker or "
            "delete the section, and run init again"
        )
    current = existing[start : end + len(END)] + "\n"
    if current == block:
        return Change(None, "already has the work-loop section")
    if not force:
        return Change(None, "has its own version of the work-loop section: kept (--force)")
    after = existing[end + len(END) :].removeprefix("\n")
    return Change(existing[:start] + block + after, "replaced the work-loop section")


def ignore_rule(existing: str | None, rule: str, ignored: bool) -> Change:
    """`.gitignore` with a rule for the state folder, unless git already ignores it."""
    if ignored:
        return Change(None, "already keeps the state folder out of git")
    lines = f"# wvo-mcp's state folder: its database and settings (wvo-mcp init)\n{rule}\n"
    if existing is None:
        return Change(lines, "created, keeping the state folder out of git")
    spacer = "" if not existing or existing.endswith("\n") else "\n"
    return Change(existing + spacer + lines, "added a rule keeping the state folder out of git")


def new_file(existing: str | None, text: str, what: str) -> Change:
    """A file of ours that is written once: a person's later edits are theirs."""
    if existing is None:
        return Change(text, f"created: {what}")
    return Change(None, "kept as it is")


def providers_file(existing: str | None, ours: str) -> Change:
    """The providers file: `ours` when there is none; else the person's, with each provider of
    `ours` whose CLI kind it has no provider for added at the end of its `providers:` list,
    every line of theirs kept. One that cannot be merged into is kept, saying what to add."""
    if existing is None:
        return Change(ours, "created: your coding CLIs")
    try:
        theirs = yaml.safe_load(existing) or {}
        listed = theirs.get("providers") if isinstance(theirs, dict) else None
    except yaml.YAMLError:
        listed = None
    wanted = yaml.safe_load(ours)["providers"]
    if not isinstance(listed, list):
        kinds = ", ".join(p["worker"]["kind"] for p in wanted)
        return Change(None, f"kept as it is (not a providers list init can add to: {kinds})")
    have = {
        p.get("worker", {}).get("kind")
        for p in listed
        if isinstance(p, dict) and isinstance(p.get("worker"), dict)
    }
    names = {p.get("name") for p in listed if isinstance(p, dict)}
    new = [p for p in wanted if p["worker"]["kind"] not in have and p["name"] not in names]
    if not new:
        return Change(None, "kept as it is: it has a provider for each CLI found")
    ranks = [p.get("preference") for p in listed if isinstance(p, dict)]
    after = max([r for r in ranks if isinstance(r, int)], default=0)
    for offset, provider in enumerate(new, start=1):
        provider["preference"] = after + offset  # after theirs: their order stands
    merged = _append_to_list(existing, "providers", new)
    if merged is None:
        added = ", ".join(p["name"] for p in new)
        return Change(None, f"kept as it is; add a provider for {added} yourself (docs/routing.md)")
    return Change(merged, f"added the provider(s) {', '.join(p['name'] for p in new)}")


def _append_to_list(text: str, key: str, items: list[Any]) -> str | None:
    """`items` added after the last item of the top-level block list `key:` in `text`, at
    its items' indentation; None when the block is not a plain list of `- ` items."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"{key}:"), None)
    if start is None:
        return None
    last, indent = start, None  # the block's last line, its items' indentation
    for at in range(start + 1, len(lines)):
        line, stripped = lines[at], lines[at].strip()
        if not stripped or (stripped.startswith("#") and not line[0].isspace()):
            continue  # blank lines and comments at the margin stay after our items
        if not line[0].isspace() and not stripped.startswith("-"):
            break  # the next top-level key
        if indent is None and stripped.startswith("- "):
            indent = len(line) - len(line.lstrip())
        last = at
    if indent is None:
        return None
    end = last + 1
    block = yaml.safe_dump(items, sort_keys=False, default_flow_style=None)
    shown = "".join(" " * indent + line if line.strip() else line
                    for line in block.splitlines(keepends=True))  # fmt: skip
    if lines[end - 1] and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join([*lines[:end], shown, *lines[end:]])


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
