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


def server_json(existing: str | None, entry: dict[str, Any], force: bool) -> Change:
    """`.mcp.json` (Claude Code's project servers) with our server in `mcpServers`."""
    if existing is None:
        return Change(_json({"mcpServers": {SERVER: entry}}), "created with the wvo server")
    try:
        found = json.loads(existing)
    except ValueError as exc:
        raise ValidationFailed(
            f"is not valid JSON ({exc}); fix it or move it aside, and run init again "
            "(init adds its server to the file, it never replaces a file it cannot read)"
        ) from None
    servers = found.get("mcpServers", {}) if isinstance(found, dict) else None
    if not isinstance(servers, dict):
        raise ValidationFailed(
            'is not an MCP configuration: a JSON object whose "mcpServers" is an object was '
            "expected; fix it or move it aside, and run init again"
        )
    if servers.get(SERVER) == entry:
        return Change(None, "already has the wvo server")
    if SERVER in servers and not force and not written_by_init(servers[SERVER]):
        return Change(None, 'has a "wvo" server of its own: kept (--force replaces it)')
    replaced = SERVER in servers
    found["mcpServers"] = {**servers, SERVER: entry}
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


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
