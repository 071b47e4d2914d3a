"""The first answers of `wvo-mcp serve` over stdio, given while the server imports.

A client waits for `initialize` and its lists before its agent may use a server's tools
(Claude Code gives a server 5 s for all of them), and the imports a server needs (the SDK,
pydantic's models) take most of a start: 0.5 s of CPU, seconds on a busy machine. So a
server started cold answers `initialize`, `notifications/initialized`, the lists of tools,
prompts, resources and templates, and `ping` from the table the server itself made
(data/handshake.json, edge/handshake.py) while a thread imports the rest. The prompts are
the directives found (guidance.py): answered only when they are the table's, the packaged
ones; a person's or a project's own are listed by the server.
The first message it has no answer for, the end of stdin, or the server being ready, hands
the connection over: the server is given the client's `initialize` and `initialized` to
read first (its answer to them dropped: the client has it) and then whatever was read but
not answered. Nothing else changes; a line it cannot read, a revision or a WVO_TOOLS the
table lacks, or a stdin that is no pipe, goes straight to the server. Imports only light
modules, as warm_relay.py does.
"""

import json
import os
import select
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = Path(__file__).parent.parent / "data" / "handshake.json"
READ_BYTES = 65_536
LINE_BYTES = 65_536  # a longer line is no handshake: handed over unread
SWITCH = "WVO_FRONT"  # "0": every message goes to the server as it comes
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
# The directives the server would list, as (name, title), found when prompts are asked for.
Directives = Callable[[], list[tuple[str, str]] | None]


@dataclass
class Handover:
    """What the server takes over: `replay`, lines it reads first as the client's own;
    `answered`, the ids among them whose answer the client already has; `pending`, what was
    read and not answered, which it reads next."""

    replay: list[bytes] = field(default_factory=list)
    answered: set[int | str] = field(default_factory=set)
    pending: bytes = b""


_handed: Handover | None = None


def handed() -> Handover:
    """What the front left for the server (nothing when it did not run)."""
    return _handed if _handed is not None else Handover()


def serve(profile: str, imports: tuple[str, ...], directives: Directives) -> None:
    """Answer what the table answers for a server of `profile` (WVO_TOOLS) until `imports`
    are imported in a thread, then leave what the server must take over (handed())."""
    global _handed
    table = _table() if os.environ.get(SWITCH, "1") != "0" and _pipes() else None
    if table is None or profile not in table["lists"]:
        return
    woken, wake = os.pipe()
    loading = threading.Thread(target=_import, args=(imports, wake), daemon=True)
    loading.start()
    # A client stopping its server meanwhile: the caller's handlers (handle.py) end it.
    try:
        _handed = _answer(table, profile, woken, directives)
    finally:
        loading.join()  # every import done: the server imports nothing beside a thread
        os.close(woken)
        os.close(wake)


def _answer(table: dict[str, Any], profile: str, woken: int, directives: Directives) -> Handover:
    given = Handover()
    lists = _Lists(dict(table["lists"][profile]), directives)
    version: str | None = None
    while True:
        readable, _, _ = select.select([0, woken], [], [])
        if woken in readable:
            return given
        data = os.read(0, READ_BYTES)
        if not data:
            return given
        given.pending += data
        if b"\n" not in given.pending[:LINE_BYTES] and len(given.pending) > LINE_BYTES:
            return given  # no handshake is this long: the server's to read (and refuse)
        while b"\n" in given.pending:
            line, _, rest = given.pending.partition(b"\n")
            try:
                reply, version = _reply(line, table, lists, version, given)
            except Exception:  # _Unanswered, or a hostile line (too deep, ...): the server's
                return given
            if reply is not None:
                _write(reply)
            given.pending = rest


class _Unanswered(Exception):
    """A line the table has no answer for: the server's."""


@dataclass
class _Lists:
    """The table's lists for one profile. The prompts are answered only when the directives
    found are the table's: found once, when first asked for (that reads the state folder
    and runs git)."""

    table: dict[str, Any]
    directives: Directives | None

    def answer(self, method: str) -> Any:
        if method == "prompts/list" and self.directives is not None:
            found, self.directives = self.directives(), None
            listed = self.table.get(method, {}).get("prompts", [])
            if found != [(p.get("name"), p.get("title")) for p in listed]:
                self.table.pop(method, None)
        if method not in self.table:
            raise _Unanswered
        return self.table[method]


def _reply(
    line: bytes, table: dict[str, Any], lists: _Lists, version: str | None, given: Handover
) -> tuple[dict[str, Any] | None, str | None]:
    """(the answer to `line`, None for a notification it keeps; the revision agreed), or
    _Unanswered."""
    if not line.strip():
        return None, version
    if len(line) > LINE_BYTES:
        raise _Unanswered
    try:
        message = json.loads(line)
    except ValueError:
        raise _Unanswered from None
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise _Unanswered
    method, params, ident = message.get("method"), message.get("params"), message.get("id")
    if "id" not in message:
        if method == "notifications/initialized" and version is not None:
            given.replay.append(line + b"\n")
            return None, version
        raise _Unanswered
    if isinstance(ident, bool) or not isinstance(ident, int | str) or ident in given.answered:
        raise _Unanswered
    if method == "initialize" and version is None and isinstance(params, dict):
        asked = params.get("protocolVersion")
        if not isinstance(asked, str) or asked not in table["initialize"]:
            raise _Unanswered
        given.replay.append(line + b"\n")
        given.answered.add(ident)
        return _result(ident, table["initialize"][asked]), asked
    if version is None or params not in (None, {}):
        raise _Unanswered
    if method in LISTS:
        return _result(ident, lists.answer(method)), version
    if method == "ping":
        return _result(ident, {}), version
    raise _Unanswered


def _result(ident: int | str, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def _write(reply: dict[str, Any]) -> None:
    data = json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    while data:
        data = data[os.write(1, data) :]


def _table() -> dict[str, Any] | None:
    try:
        found = json.loads(TABLE.read_bytes())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _pipes() -> bool:
    """stdin and stdout are pipes or sockets, as a client starts a server (a terminal's or
    a file's stdin is read by the server's threads instead)."""
    try:
        modes = [os.fstat(fd).st_mode for fd in (0, 1)]
    except OSError:
        return False
    return all(stat.S_ISFIFO(m) or stat.S_ISSOCK(m) for m in modes)


def _import(names: tuple[str, ...], wake: int) -> None:
    try:
        for name in names:
            __import__(name)
    except BaseException:
        pass
    finally:
        os.write(wake, b".")
