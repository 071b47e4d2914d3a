"""Shared project context: named sections with versions and history, mirrored to a file.

Shared project context: named sections with versions, caps and history. The database is
the source of truth; state/context.md is re-rendered inside each write's transaction, so
files land in commit order and the file never shows a version another write overtook."""

from datetime import datetime
from pathlib import Path
from typing import Literal

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import Conflict, NotFound, ValidationFailed
from wvo_mcp.files import write_atomically
from wvo_mcp.models import ContextReadResult, ContextSection, ContextVersion, ContextWriteResult
from wvo_mcp.services import rows
from wvo_mcp.store import Tx

HISTORY_KEPT = 50


def _size(text: str) -> int:
    return len(text.encode())


def write(
    tx: Tx,
    settings: Settings,
    name: str,
    content: str,
    mode: Literal["replace", "append"],
    expected_version: int | None,
    author: str,
    now: datetime,
) -> ContextWriteResult:
    current = tx.one("context_section", (name,))
    version = current["version"] if current else 0
    if expected_version is not None and expected_version != version:
        shown = repr(current["content"]) if current else "(the section does not exist yet)"
        raise Conflict(
            f"section {name!r} is at version {version}, not {expected_version}: someone wrote "
            f"it first. Current content: {shown}. Merge your change into it and write again "
            f"with expected_version={version}"
        )
    if mode == "append" and current and current["content"]:
        content = current["content"].rstrip("\n") + "\n" + content
    size = _size(content)
    if size > settings.context_section_bytes:
        raise ValidationFailed(
            f"section {name!r} would be {size} bytes, over the {settings.context_section_bytes}"
            "-byte cap per section (WVO_CONTEXT_SECTION_BYTES); summarise it and replace the "
            "section instead of appending"
        )
    total = tx.value("context_total_bytes", (name,)) + size
    if total > settings.context_total_bytes:
        raise ValidationFailed(
            f"the context would be {total} bytes in all, over the {settings.context_total_bytes}"
            "-byte cap (WVO_CONTEXT_TOTAL_BYTES); summarise or replace sections first"
        )
    row = {
        "name": name,
        "version": version + 1,
        "content": content,
        "mode": mode,
        "author": author,
        "now": timeutil.to_text(now),
    }
    tx.run("upsert_context_section", row)
    tx.run("insert_context_history", row)
    tx.run("prune_context_history", (name, version + 1 - HISTORY_KEPT))
    render(tx, settings.context_file)
    return ContextWriteResult(section=name, version=version + 1, size_bytes=size, total_bytes=total)


def read(tx: Tx, name: str | None, version: int | None) -> ContextReadResult:
    if name is None:
        if version is not None:
            raise ValidationFailed("version needs a section: pass section and version together")
        sections = [rows.model(ContextSection, r) for r in tx.all("context_sections")]
    elif version is None:
        row = tx.one("context_section", (name,))
        if row is None:
            raise NotFound(f"no context section {name!r}; context_read() lists the sections")
        sections = [rows.model(ContextSection, row)]
    else:
        old = tx.one("context_version", (name, version))
        if old is None:
            raise NotFound(
                f"section {name!r} has no version {version} (the last {HISTORY_KEPT} are kept; "
                "`wvo-mcp context history SECTION` lists them)"
            )
        sections = [
            ContextSection(
                name=name,
                version=version,
                content=old["content"],
                updated_by=old["author"],
                updated_at=old["at"],
            )
        ]
    return ContextReadResult(sections=sections, total_bytes=sum(_size(s.content) for s in sections))


def history(tx: Tx, name: str, limit: int) -> list[ContextVersion]:
    found = tx.all("context_history", (name, limit))
    if not found:
        raise NotFound(f"no context section {name!r}")
    return [rows.model(ContextVersion, r) for r in found]


def render(tx: Tx, path: Path) -> None:
    write_atomically(path, markdown(tx))


def markdown(tx: Tx) -> str:
    """The whole context as the Markdown document state/context.md holds."""
    parts = [
        "# Project context",
        "",
        "<!-- Rendered by wvo-mcp from its database; edits here are overwritten. -->",
        "",
    ]
    for row in tx.all("context_sections"):
        parts += [
            f"## {row['name']}",
            f"<!-- version {row['version']}, {row['updated_by']}, {row['updated_at']} -->",
            "",
            row["content"].rstrip("\n"),
            "",
        ]
    return "\n".join(parts)
