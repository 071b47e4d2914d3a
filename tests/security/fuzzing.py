"""Hostile tool calls against a real `python -m wvo_mcp serve`, shared by
tests/security/test_fuzz.py (a bounded, derandomised run in CI) and scripts/bench/fuzz.py
(10,000+ calls with figures).

How a call is made:

1. `valid` arguments are drawn with hypothesis-jsonschema from the tool's own `inputSchema`
   as `tools/list` returns it, so a new tool or argument is covered with no strategy to
   write. Some id-like fields are then swapped for ids that exist (T1..T5, the live lease
   token, the seeded agent, section, providers and models) so calls get past "not found"
   and into the code behind it.
2. Most calls are then damaged: 1-3 mutations at paths drawn from the arguments (nested
   ones included, e.g. `tasks.0.metadata`): a value replaced by a hostile one (wrong type,
   ~1 MB string, 100k-item list, nesting 150-deep or 1000+-deep, NUL, lone surrogates,
   NaN/Infinity, 5000-digit numbers, ids with `..`, `/`, a leading `-`), an unknown
   argument added, a required one removed; or the arguments are not an object at all; or
   the tool does not exist.
3. The frame is written by hand (`encode`), not by an MCP client: the SDK's client
   serialises with pydantic, which turns NaN into null and cannot write a lone surrogate,
   so the server would never see those. Half the frames are ASCII (`\\ud800` escapes), half
   raw UTF-8 (a lone surrogate then becomes invalid UTF-8 bytes).

What is checked for each call (`Target.check`): the server answers with a success, a tool
error (`isError`) or a JSON-RPC error, each valid by the SDK's own types (and a success's
`structuredContent` by the tool's `outputSchema`); no reply text holds a traceback; the
server still answers `task_get T1` afterwards; a refused call changed no row of any table
of the database. A frame the SDK's parser itself refuses (nesting deeper than its JSON
limit of 200, a `\\ud800` escape) is answered with a JSON-RPC error whose id is null (the
id could not be read); whether the SDK will refuse a frame is decided beforehand with the
SDK's own parser, so the reply awaited is the right one, and a frame never answered fails
(`dropped` counts those, and must stay 0).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import select
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import mcp_types
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from mcp.client.stdio import StdioServerParameters, get_default_environment
from mcp.server.mcpserver.utilities.func_metadata import func_metadata

from tests.conftest import open_db, server_params
from wvo_mcp.config import Settings
from wvo_mcp.edge import stdio
from wvo_mcp.edge.access import HttpAccess
from wvo_mcp.edge.server import build_server

PROTOCOL_VERSION = "2025-11-25"
REPLY_TIMEOUT_S = 30.0  # a reply later than this is a hang
SHUTDOWN_TIMEOUT_S = 10.0
KNOWN_IDS = ("T1", "T2", "T3", "T4", "T5")
HOLDER = "fuzz-other-agent"  # an agent id that is not this connection's
SECTION = "notes"
KEEP = 8  # how many learnt leases, holders and task ids stay in play
TRACEBACK_MARKERS = ("Traceback", 'File "')
# Every table the migrations create (wvo_mcp/store/sql/*/migrations/*.sql). The digest takes
# every table it finds; this list only makes sure none of these went missing. The dialect
# tests (tests/unit/test_sql_dialects.py) check PostgreSQL has each, as SQLite has it.
EXPECTED_TABLES = frozenset(
    {
        "tasks",
        "task_dependencies",
        "task_events",
        "checkpoints",
        "agents",
        "queue_counts",
        "settings_meta",
        "context_sections",
        "context_history",
        "monitor_leader",
        "health_snapshots",
        "health_anomalies",
        "provider_usage",
        "provider_breakers",
        "autopilot_runs",
        "api_tokens",
        "run_outputs",
        "agent_usage",
        "reviews",
        "task_usage",
        "route_outcomes",
    }
)
OUTCOMES = ("ok", "tool_error", "protocol_error", "dropped")


def fuzz_env(workspace: Path) -> dict[str, object]:
    """One quiet server: no health monitor (its ticks would write), no telemetry, a
    workspace of its own, and a sandbox that refuses every command after validating it:
    fuzzed commands are never executed (a random `yes` with timeout_s=3600 would hang the
    run, and the sandbox has its own tests)."""
    return {
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0,
        "WVO_OTEL_ENABLED": 0,
        "WVO_WORKSPACE_ROOT": workspace,
        "WVO_SANDBOX_BACKEND": "none",  # without WVO_SANDBOX_ALLOW_UNISOLATED: refused
    }


# --------------------------------------------------------------------------- the wire


class Raw(str):
    """JSON text that goes into the frame as it is (nesting 10,000 deep, a 5000-digit
    number, a NaN literal): Python's json module could not write some of it."""

    __slots__ = ()


def encode(value: object, ascii_only: bool = True) -> str:
    """JSON text for a frame: NaN and Infinity as literals, lone surrogates as `\\ud800`
    escapes (ascii_only) or as themselves (then written as invalid UTF-8)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(
                f"{encode(str(k), ascii_only)}:{encode(v, ascii_only)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v, ascii_only) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


def request_line(request_id: int, method: str, params: object, ascii_only: bool = True) -> bytes:
    text = (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":{json.dumps(method)},'
        f'"params":{encode(params, ascii_only)}}}'
    )
    return text.encode("utf-8", "surrogatepass")


def refused_id(line: bytes) -> object:
    """The id the server answers a frame the SDK cannot parse with (wvo_mcp/edge/stdio.py)."""
    return stdio.line_id(line.decode("utf-8", "replace"))


def sdk_parses(line: bytes) -> bool:
    """Whether the SDK's stdio transport turns this line into a message (it reads stdin as
    UTF-8 with errors="replace", then validates with this adapter); a line it refuses is
    answered with a null-id error."""
    try:
        mcp_types.jsonrpc_message_adapter.validate_json(
            line.decode("utf-8", "replace"), by_name=False
        )
    except ValueError:
        return False
    return True


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def strict_json(line: bytes) -> Any:
    """Parse one stdout line as strict JSON (no NaN or Infinity)."""
    return json.loads(line, parse_constant=_no_constants)


class ServerBroke(AssertionError):
    """The server died, hung, or wrote something that is not JSON-RPC to stdout."""


class StdoutClosed(ServerBroke):
    """End of the server's stdout (it exited or closed it)."""


class RawServer:
    """A real server process spoken to over its stdin/stdout pipes, one JSON line each way,
    with a deadline on every read (select, no sleeps). Every stdout line must be a JSON-RPC
    message; replies are kept by id until asked for."""

    def __init__(self, params: StdioServerParameters, stderr: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            [params.command, *params.args],
            cwd=params.cwd,
            env={**get_default_environment(), **(params.env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        self._buffer = b""
        self.replies: dict[object, dict[str, Any]] = {}
        self.lines_read = 0
        self.next_id = 1

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fresh_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise ServerBroke(f"the server closed stdin (exit {self.proc.poll()})") from exc

    def _read_line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerBroke("no reply before the deadline (a hang)")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise StdoutClosed(f"the server closed stdout (exit {self.proc.poll()})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def read_message(self, deadline: float) -> dict[str, Any]:
        """The next stdout line, which must be one JSON-RPC message."""
        line = self._read_line(deadline)
        self.lines_read += 1
        try:
            message = strict_json(line)
            mcp_types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        except ValueError as exc:
            raise ServerBroke(f"stdout line is not a JSON-RPC message: {line[:300]!r}") from exc
        assert isinstance(message, dict)
        return message

    def wait_for(self, request_id: object, timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request_id not in self.replies:
            message = self.read_message(deadline)
            if "id" in message and "method" not in message:
                self.replies[message["id"]] = message
        return self.replies.pop(request_id)

    def request(
        self, method: str, params: object = None, timeout: float = REPLY_TIMEOUT_S
    ) -> dict[str, Any]:
        request_id = self.fresh_id()
        self.send(request_line(request_id, method, {} if params is None else params))
        return self.wait_for(request_id, timeout)

    def notify(self, method: str, params: object = None) -> None:
        frame = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        self.send(json.dumps(frame).encode())

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "wvo-fuzz", "version": "0"},
            },
        )
        assert "result" in reply, reply
        self.notify("notifications/initialized")
        return reply

    def call_tool(self, name: str, arguments: object) -> dict[str, Any]:
        """tools/call that must succeed; its structuredContent."""
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        result = reply.get("result")
        assert isinstance(result, dict) and not result.get("isError"), (name, reply)
        content = result["structuredContent"]
        assert isinstance(content, dict)
        return content

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ServerBroke("no VmRSS for the server")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> int | None:
        """Close stdin (the client leaving), check what is left on stdout up to its end
        (JSON-RPC only, still) and wait for the exit; kill the server if it does not exit.
        The exit code, or None when it had to be killed."""
        with contextlib.suppress(BrokenPipeError, OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        try:
            with contextlib.suppress(StdoutClosed):
                while True:
                    message = self.read_message(deadline)
                    if "id" in message and "method" not in message:
                        self.replies[message["id"]] = message
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(SHUTDOWN_TIMEOUT_S)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def log_tracebacks(log: Path) -> list[str]:
    """The records of a server's log (its stderr) that hold a traceback, each from its
    `LEVEL message` line on: an exception nobody handled (the SDK logs a tool's crash
    with its traceback and tells the client only the tool's name)."""
    records: list[list[str]] = [[]]
    for line in log.read_text("utf-8", "replace").splitlines():
        if re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line):
            records.append([])
        records[-1].append(line)
    return [
        "\n".join(record)[:3000]
        for record in records
        if any(line.startswith("Traceback (most recent call last)") for line in record)
    ]


# --------------------------------------------------------------------------- the database


def db_digest(db: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """Rows and a hash of every table (sqlite's own included), read-only."""
    tables = [
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    ]
    missing = EXPECTED_TABLES - set(tables)
    assert not missing, f"tables missing from the digest: {sorted(missing)}"
    digest: dict[str, tuple[int, str]] = {}
    for table in tables:
        h = hashlib.sha256()
        count = 0
        quoted = table.replace('"', '""')
        for row in db.execute(f'SELECT * FROM "{quoted}"'):
            h.update(repr(tuple(row)).encode("utf-8", "surrogatepass"))
            count += 1
        digest[table] = (count, h.hexdigest()[:16])
    return digest


def changed_tables(
    before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]
) -> list[str]:
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))


# --------------------------------------------------------------------------- the calls

HUGE_STRING_SIZES = (70_000, 1_000_000, 1_048_577)
HUGE_LIST_SIZES = (5_001, 100_000)
SHALLOW_DEPTHS = (150, 180, 190)  # under the SDK's JSON nesting limit (200 in all)
DEEP_DEPTHS = (1_000, 1_500, 10_000)  # over it: the SDK drops the frame

BAD_IDS = (
    "",
    " ",
    ".",
    "..",
    "../T1",
    "T1/../T2",
    "T1/..",
    "/",
    "/T1",
    "/etc/passwd",
    "-",
    "-T1",
    "--help",
    "T1\x00",
    "\x00T1",
    " T1",
    "T1 ",
    "T1\n",
    "%2e%2e%2fT1",
    "~",
    "~root",
    "*",
    "%",
    "_",
    "T1' OR '1'='1",
    "'; DROP TABLE tasks; --",
    "T\u0131",
    "\uff34\uff11",  # fullwidth T1
    "T1" * 60,
    "\ud800",
    "T1\udc80",
)
SPECIAL_VALUES: tuple[object, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0,
    -1,
    2**31,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**300,
    1e308,
    5e-324,
    Raw("9" * 5_000),
    Raw("-" + "9" * 5_000),
    Raw("1e999"),
    Raw("1E400"),
    Raw("-0"),
    Raw("NaN"),
    Raw("-Infinity"),
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "x\udc80y",
    "\ufeff",
    "\u202e",
    "\u0085",
    "\u2028",
    "\r\n",
    "{{7*7}}",
    "${HOME}",
    "$(id)",
    "0",
    "1e3",
    "true",
    "null",
    True,
    False,
    None,
    [],
    {},
    [None],
    {"": None},
    {"__proto__": {"admin": True}},
)
UNKNOWN_NAMES = (
    "task",
    "taskId",
    "task_Id",
    "TASK_ID",
    "task_id ",
    "lease_second",
    "leaseToken",
    "__proto__",
    "constructor",
    "__class__",
    "",
    " ",
    "\x00",
    "\ud800",
    "_meta",
    "n" * 10_000,
)
NOT_OBJECTS: tuple[object, ...] = (None, [], [1, 2], "x", 1, True, Raw("NaN"), [{"task_id": "T1"}])
BAD_TOOL_NAMES = (
    "",
    "nope",
    "task_get\x00",
    "TASK_GET",
    "task_get ",
    "../task_get",
    "task-get",
    "\ud800",
    "t" * 100_000,
)


def _build_huge_string(choice: tuple[int, str]) -> str:
    size, unit = choice
    return unit * size


def _build_huge_list(choice: tuple[int, object]) -> Raw:
    """As JSON text: opaque to later mutations (which would otherwise reach every item)."""
    size, item = choice
    return Raw("[" + ",".join([encode(item)] * size) + "]")


def _build_nested(choice: tuple[int, bool]) -> Raw:
    depth, as_list = choice
    if as_list:
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


def hostile_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=4),
        st.dictionaries(st.text(max_size=8), scalars, max_size=4),
        st.sampled_from(SPECIAL_VALUES),
        st.sampled_from(BAD_IDS),
        st.tuples(
            st.sampled_from(HUGE_STRING_SIZES), st.sampled_from(("x", "\u00e9", "\x00", "\ud800"))
        ).map(_build_huge_string),
        st.tuples(
            st.sampled_from(HUGE_LIST_SIZES), st.sampled_from(("T1", 0, None, {"title": "t"}))
        ).map(_build_huge_list),
        st.tuples(st.sampled_from(SHALLOW_DEPTHS + DEEP_DEPTHS), st.booleans()).map(_build_nested),
    ).map(copy.deepcopy)  # the constants above are shared; a later mutation may edit one


def _short(value: object, limit: int = 120) -> str:
    if isinstance(value, Raw):
        text = f"Raw({len(value)} chars: {str(value)[:40]!r})"
    elif isinstance(value, str) and len(value) > 40:
        text = f"{value[:20]!r}...({len(value)} chars)"
    elif isinstance(value, list) and len(value) > 8:
        text = f"[{_short(value[0], 30)}, ...] ({len(value)} items)"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{_short(k, 30)}: {_short(v, 60)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_short(v, 40) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Call:
    """One tools/call to make; printed short (hypothesis shows failing examples)."""

    def __init__(self, tool: str, arguments: object, mutations: list[str], ascii_only: bool):
        self.tool = tool
        self.arguments = arguments
        self.mutations = mutations
        self.ascii_only = ascii_only

    @property
    def kind(self) -> str:
        return "valid" if not self.mutations else self.mutations[0].split(" ", 1)[0]

    def line(self, request_id: int) -> bytes:
        return request_line(
            request_id,
            "tools/call",
            {"name": self.tool, "arguments": self.arguments},
            self.ascii_only,
        )

    def __repr__(self) -> str:
        return (
            f"Call({_short(self.tool, 40)}, {_short(self.arguments, 400)}, "
            f"mutations={self.mutations}, ascii_only={self.ascii_only})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass
class Known:
    """What exists on the server, so valid calls reach the code behind the lookups."""

    task_ids: tuple[str, ...] = KNOWN_IDS
    lease_tokens: tuple[str, ...] = ()  # what claim_task granted; the newest last
    agents: tuple[str, ...] = ()
    sections: tuple[str, ...] = (SECTION,)
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = (".", "sub", "..", "/")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"Known({len(self.task_ids)} task ids, {len(self.lease_tokens)} leases)")


def _swap(draw: st.DrawFn, value: object, options: Sequence[object], p_true: int) -> object:
    """`value`, or (about p_true in 10 times) one of `options`. The options change as the
    server's state does, so the draws must not depend on them (hypothesis replays choice
    sequences and refuses a strategy whose draws change): always a coin and an index."""
    coin, index = draw(st.integers(0, 9)), draw(st.integers(0, 63))
    if options and coin < p_true:
        return options[index % len(options)]
    return value


def personalise(draw: st.DrawFn, value: object, known: Known, key: str = "") -> object:
    """Swap generated id-like values for ones that exist, through nested tasks too."""
    if isinstance(value, dict):
        return {k: personalise(draw, v, known, k) for k, v in value.items()}
    if isinstance(value, list):
        if key == "depends_on":
            return [_swap(draw, v, known.task_ids, 6) for v in value]
        return [personalise(draw, v, known, key) for v in value]
    swaps: dict[str, tuple[Sequence[object], int]] = {
        "task_id": (known.task_ids, 7),
        "id": (known.task_ids, 3),
        "lease_token": (known.lease_tokens, 7),
        "agent_id": (known.agents, 4),
        "section": (known.sections, 5),
        "provider": (known.providers, 6),
        "model": (known.models, 6),
        "workspace": (known.workspaces, 5),
    }
    if key in swaps and value is not None:
        options, p_true = swaps[key]
        return _swap(draw, value, options, p_true)
    return value


def _paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """Every place in the arguments a value sits (the first few items of long lists)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _dicts(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if isinstance(value, dict):
        yield prefix
        for k, v in value.items():
            yield from _dicts(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _dicts(v, (*prefix, i))


def _at(value: Any, path: tuple[object, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _label(path: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in path) or "(arguments)"


@dataclass
class Tool:
    name: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    valid: st.SearchStrategy[Any] = field(repr=False)
    output_validator: Draft202012Validator | None = field(repr=False, default=None)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"Tool({self.name!r})")  # not the schemas: hypothesis prints strategies


def answer_schemas() -> dict[str, dict[str, Any]]:
    """Each tool's answer schema, derived from its return type as the SDK would have published
    it: the server publishes none (edge/calls.Server says why), and its replies must still
    keep to the models they are typed by."""
    settings = Settings(state_root=Path(tempfile.mkdtemp(prefix="wvo-schemas-")))
    server = build_server(settings, http=HttpAccess(auth=None))
    schemas = {}
    for tool in server._tool_manager.list_tools():
        schema = func_metadata(tool.fn, structured_output=True).output_schema
        assert schema is not None, f"{tool.name} answers no model"
        schemas[tool.name] = schema
    return schemas


def load_tools(tools_list: list[dict[str, Any]]) -> list[Tool]:
    """The tools as `tools/list` gave them, each with its strategy of valid arguments and the
    schema of its answers."""
    tools = []
    answers = answer_schemas()
    for entry in sorted(tools_list, key=lambda t: t["name"]):
        output = answers[entry["name"]]
        tools.append(
            Tool(
                name=entry["name"],
                input_schema=entry["inputSchema"],
                output_schema=output,
                valid=from_schema(entry["inputSchema"]),
                output_validator=Draft202012Validator(output) if output else None,
            )
        )
    return tools


def _mutate(draw: st.DrawFn, args: dict[str, Any], tool: Tool) -> list[str]:
    """Damage `args` in place 1-3 times; what was done, for the report."""
    done: list[str] = []
    required = tool.input_schema.get("required", [])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(("replace", "replace", "replace", "unknown", "missing")))
        if kind == "missing":
            present = [k for k in args if k in required] or list(args)
            if present:
                key = draw(st.sampled_from(sorted(present)))
                del args[key]
                done.append(f"missing {key}")
                continue
            kind = "unknown"
        if kind == "unknown":
            where = draw(st.sampled_from(list(_dicts(args))))
            name = draw(st.one_of(st.sampled_from(UNKNOWN_NAMES), st.text(max_size=20)))
            _at(args, where)[name] = draw(hostile_values())
            done.append(f"unknown {_label((*where, _short(name, 30)))}")
            continue
        places = list(_paths(args)) + [
            (k,) for k in tool.input_schema.get("properties", {}) if k not in args
        ]
        if not places:
            continue
        path = draw(st.sampled_from(places))
        _at(args, path[:-1])[path[-1]] = draw(hostile_values())
        done.append(f"replace {_label(path)}")
    return done or ["replace (nothing to damage)"]


@st.composite
def tool_calls(draw: st.DrawFn, tools: Sequence[Tool], known: Known) -> Call:
    tool = draw(st.sampled_from(tools))
    ascii_only = draw(st.booleans())
    what = draw(st.integers(0, 19))
    if what == 0:
        name = draw(st.sampled_from(BAD_TOOL_NAMES))
        return Call(name, draw(tool.valid), [f"unknown_tool {_short(name, 30)}"], ascii_only)
    if what == 1:
        value = copy.deepcopy(draw(st.sampled_from(NOT_OBJECTS)))
        return Call(tool.name, value, ["not_an_object"], ascii_only)
    args = personalise(draw, draw(tool.valid), known)
    assert isinstance(args, dict)
    if what < 8:  # ~30% left valid
        return Call(tool.name, args, [], ascii_only)
    return Call(tool.name, args, _mutate(draw, args, tool), ascii_only)


@dataclass(frozen=True)
class FixedCase:
    """An input that once broke the server's promise (issue 23): it answered only "Error
    executing tool", or stored what no JSON reader accepts. `says`: words its refusal must
    hold, naming what was wrong and what would be accepted."""

    name: str
    tool: str
    arguments: dict[str, Any]
    says: tuple[str, ...]


UTC_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
FINITE = "JSON numbers must be finite"


def issue_23_cases(token: str) -> list[FixedCase]:
    """Issue 23's hostile tool inputs (its items 1-3) and their neighbours. `token`: the
    lease on T1, so a refused sandbox_run that would record on T1 is tried too. Item 4 (ids
    such as 1.5 or null) is a frame, not a tool input: test_fuzz.py has it on its own."""

    def task(**fields: object) -> dict[str, Any]:
        return {"tasks": [{"id": "N23", "title": "issue 23", **fields}]}

    at_due = ("tasks.0.due_at", UTC_RANGE)
    return [
        FixedCase(
            "workspace NUL",
            "sandbox_run",
            {"command": ["true"], "workspace": "\x00"},
            ("workspace", "NUL", "inside the workspace root"),
        ),
        FixedCase(
            "workspace NUL, recorded on T1",
            "sandbox_run",
            {"command": ["true"], "workspace": "sub\x00/..", "task_id": "T1", "lease_token": token},
            ("workspace", "NUL", "inside the workspace root"),
        ),
        *(
            FixedCase(f"due_at {due}", "task_create", task(due_at=due), at_due)
            for due in (
                "9999-12-31T23:59:59-14:00",
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:00-00:01",
            )
        ),
        FixedCase(
            "metadata NaN",
            "task_create",
            task(metadata={"k": math.nan}),
            ("tasks.0.metadata", "metadata.k is NaN", FINITE),
        ),
        FixedCase(
            "metadata Infinity",
            "task_create",
            task(metadata={"k": math.inf}),
            ("tasks.0.metadata", "metadata.k is Infinity", FINITE),
        ),
        FixedCase(
            "metadata -Infinity, nested",
            "task_create",
            task(metadata={"k": {"a": [1, -math.inf]}}),
            ("tasks.0.metadata", "metadata.k.a.1 is -Infinity", FINITE),
        ),
        FixedCase(
            "metadata 1e999 (read as Infinity)",
            "task_create",
            task(metadata={"k": Raw("1e999")}),
            ("tasks.0.metadata", "metadata.k is Infinity", FINITE),
        ),
    ]


def explicit_calls(known: Known) -> list[Call]:
    """Every kind of hostile input named in the brief, made once whatever is drawn."""
    token = known.lease_tokens[0] if known.lease_tokens else "t"
    held = {"task_id": "T1", "lease_token": token}
    mb = "x" * 1_000_000

    def call(tool: str, arguments: object, what: str, ascii_only: bool = True) -> Call:
        return Call(tool, arguments, [what] if what != "valid" else [], ascii_only)

    return [
        call("task_get", {"task_id": mb}, "replace task_id 1 MB"),
        call("context_write", {"section": SECTION, "content": mb}, "replace content 1 MB"),
        call(
            "task_create", {"tasks": _build_huge_list((100_000, {"title": "t"}))}, "replace tasks"
        ),
        call(
            "checkpoint",
            {**held, "summary": "s", "files": _build_huge_list((100_000, "f"))},
            "replace files",
        ),
        call(
            "task_create",
            {"tasks": [{"title": "deep", "metadata": {"a": _build_nested((150, True))}}]},
            "replace metadata 150 deep",
        ),
        call(
            "task_create",
            {"tasks": [{"title": "deep", "metadata": {"a": _build_nested((1_500, False))}}]},
            "replace metadata 1500 deep",
        ),
        call("task_get", {"task_id": "T1\x00"}, "replace task_id NUL"),
        call("context_read", {"section": SECTION, "version": 2**64}, "replace version 2**64"),
        call(
            "context_write",
            {"section": SECTION, "content": "c", "expected_version": 2**64},
            "replace expected_version 2**64",
        ),
        call("context_write", {"section": SECTION, "content": "a\x00b"}, "replace content NUL"),
        call("task_get", {"task_id": "\ud800"}, "replace task_id lone surrogate"),
        call("task_get", {"task_id": "T\udc801"}, "replace task_id lone surrogate", False),
        call(
            "context_write",
            {"section": SECTION, "content": "\ud800"},
            "replace content lone surrogate",
            False,
        ),
        call("task_list", {"limit": math.nan}, "replace limit NaN"),
        call("task_list", {"limit": math.inf}, "replace limit Infinity"),
        call(
            "sandbox_run",
            {"command": ["true"], "timeout_s": -math.inf},
            "replace timeout_s -Infinity",
        ),
        call(
            "record_usage",
            {
                "provider": "codex",
                "model": "gpt-5-codex",
                "input_tokens": math.nan,
                "output_tokens": 1,
                "outcome": "success",
            },
            "replace input_tokens NaN",
        ),
        call(
            "record_usage",
            {
                "provider": "codex",
                "model": "gpt-5-codex",
                "input_tokens": 10**300,
                "output_tokens": Raw("9" * 5_000),
                "outcome": "success",
            },
            "replace input_tokens huge",
        ),
        call("task_get", {"task_id": ".."}, "replace task_id .."),
        call("task_get", {"task_id": "../T1"}, "replace task_id ../T1"),
        call("task_get", {"task_id": "/etc/passwd"}, "replace task_id /etc/passwd"),
        call("claim_task", {"task_id": "-T1"}, "replace task_id -T1"),
        call("task_create", {"tasks": [{"id": "-T9", "title": "dash"}]}, "replace tasks.0.id -T9"),
        call(
            "task_create",
            {"tasks": [{"id": "T9", "title": "t", "depends_on": ["../T1"]}]},
            "replace tasks.0.depends_on.0",
        ),
        call("context_write", {"section": "../../etc/passwd", "content": "x"}, "replace section"),
        call("context_read", {"section": ".."}, "replace section .."),
        call("sandbox_run", {"command": ["true"], "workspace": "../.."}, "replace workspace ../.."),
        call("sandbox_run", {"command": ["true"], "workspace": "/"}, "replace workspace /"),
        *(call(c.tool, c.arguments, f"replace {c.name}") for c in issue_23_cases(token)),
        call("heartbeat", {**held, "lease_second": 5}, "unknown lease_second"),
        call("task_get", {"task_id": "T1", "__proto__": {"x": 1}}, "unknown __proto__"),
        call("checkpoint", held, "missing summary"),
        call("plan_update", {"task_id": "T1", "lease_token": token}, "missing status"),
        call("task_get", {}, "missing task_id"),
        call("checkpoint", {**held, "summary": "s", "git_snapshot": True}, "valid"),
        call("task_create", "x", "not_an_object"),
        call("task_get", [], "not_an_object"),
        call("nope", {}, "unknown_tool nope"),
        call("task_get\x00", {"task_id": "T1"}, "unknown_tool NUL"),
    ]


# --------------------------------------------------------------------------- the target


class Violation(AssertionError):
    """A property broke: `kind` is crash, not_alive, traceback, unhandled, contract or
    db_changed_on_refusal."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass
class Result:
    outcome: str
    latency_ms: float
    text: str = ""
    structured: dict[str, Any] | None = None


def _texts(reply: dict[str, Any]) -> str:
    if "error" in reply:
        return json.dumps(reply["error"])
    return "\n".join(
        str(c.get("text", "")) for c in reply.get("result", {}).get("content", []) or []
    )


class Target:
    """One seeded server, its database (read-only) and its tools; `check` makes one call
    and raises Violation when a property breaks."""

    def __init__(
        self, server: RawServer, db: sqlite3.Connection, tools: list[Tool], log: Path
    ) -> None:
        self.server = server
        self.db = db
        self.tools = tools
        self.log = log
        self.known = Known()

    @classmethod
    @contextlib.contextmanager
    def start(cls, tmp: Path) -> Iterator[Target]:
        """A server on `tmp`/state with `tmp`/workspace, seeded through its tools."""
        state, workspace = tmp / "state", tmp / "workspace"
        (workspace / "sub").mkdir(parents=True, exist_ok=True)
        params = server_params(state, **fuzz_env(workspace))
        log = tmp / "server.stderr"
        with open(log, "wb") as stderr:
            server = RawServer(params, stderr)
            try:
                server.initialize()
                tools = load_tools(server.request("tools/list")["result"]["tools"])
                # Answered by the server itself (cli/front.py answers the two above, and
                # the other lists, while it starts): its database is there from now on.
                server.request("resources/read", {"uri": "wvo://status"})
                with open_db(state) as db:
                    target = cls(server, db, tools, log)
                    target.seed()
                    yield target
            finally:
                code = server.close()
        assert code == 0, f"server exit code {code}; see {tmp / 'server.stderr'}"

    def seed(self) -> None:
        """T1..T5 (T3 after T1, T4 after T2 and T3, T5 gated by a verify command), T1
        claimed by this connection's agent, a context section; providers and models as the
        server has them."""
        s = self.server
        s.call_tool(
            "task_create",
            {
                "tasks": [
                    {"id": "T1", "title": "first", "complexity": 2, "epic_id": "E1"},
                    {"id": "T2", "title": "second", "complexity": 5, "tags": ["fuzz"]},
                    {"id": "T3", "title": "third", "depends_on": ["T1"]},
                    {"id": "T4", "title": "fourth", "depends_on": ["T2", "T3"]},
                    {"id": "T5", "title": "fifth", "verify_command": ["true"]},
                ]
            },
        )
        claim = s.call_tool("claim_task", {"task_id": "T1"})
        assert claim["claimed"], claim
        s.call_tool("context_write", {"section": SECTION, "content": "seeded"})
        status = s.call_tool("provider_status", {})
        providers = tuple(sorted({p["name"] for p in status.get("providers", [])}))
        models = tuple(
            sorted(
                {t["model"] for p in status.get("providers", []) for t in p.get("tiers", [])}
                - {None}
            )
        )
        self.known = Known(
            lease_tokens=(claim["lease_token"], "0" * 32),
            agents=(claim["agent_id"], HOLDER),
            providers=providers,
            models=models,
        )

    def log_tracebacks(self) -> list[str]:
        return log_tracebacks(self.log)

    def calls(self) -> st.SearchStrategy[Call]:
        return tool_calls(self.tools, self.known)

    def digest(self) -> dict[str, tuple[int, str]]:
        return db_digest(self.db)

    def alive(self) -> None:
        """The cheap call that must work after anything."""
        try:
            reply = self.server.request(
                "tools/call", {"name": "task_get", "arguments": {"task_id": "T1"}}
            )
        except ServerBroke as exc:
            raise Violation("not_alive", str(exc)) from exc
        result = reply.get("result")
        if not isinstance(result, dict) or result.get("isError"):
            raise Violation("not_alive", f"task_get T1 failed afterwards: {_short(reply, 400)}")

    def check(self, call: Call) -> Result:
        """Make `call`; raise Violation when the server misbehaves."""
        tool = next((t for t in self.tools if t.name == call.tool), None)
        request_id = self.server.fresh_id()
        line = call.line(request_id)
        parses = sdk_parses(line)
        before = self.digest()
        started = time.perf_counter()
        try:
            self.server.send(line)
            if parses:
                reply: dict[str, Any] | None = self.server.wait_for(request_id)
            else:
                # A frame the SDK cannot parse is answered with a parse or invalid-request
                # error: its own id when a lenient parse finds it, else null (edge/stdio.py).
                reply = self.server.wait_for(refused_id(line))
        except ServerBroke as exc:
            raise Violation("crash", f"{exc}; call {call!r}") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        if reply is None:
            self.alive()
            reply = self.server.replies.pop(request_id, None)
            latency_ms = (time.perf_counter() - started) * 1000
        result = self._classify(call, tool, line, reply, latency_ms)
        if result.outcome != "ok":
            changed = changed_tables(before, self.digest())
            if changed:
                raise Violation(
                    "db_changed_on_refusal",
                    f"{result.outcome} {_short(result.text, 300)!r} changed {changed}; "
                    f"call {call!r}",
                )
        self.alive()
        if result.structured is not None:
            self.learn(call, result.structured)
        return result

    def learn(self, call: Call, structured: dict[str, Any]) -> None:
        """Keep the newest leases, holders and task ids in play, so later calls can use
        them (the seeded lease is soon released or taken over)."""
        known = self.known
        if call.tool == "claim_task" and structured.get("lease_token"):
            known.lease_tokens = (*known.lease_tokens, structured["lease_token"])[-KEEP:]
            known.agents = (*known.agents, structured["agent_id"])[-KEEP:]
            task = structured.get("task") or {}
            if task.get("id") and task["id"] not in known.task_ids:
                known.task_ids = (*known.task_ids, task["id"])[-KEEP:]
        elif call.tool == "task_create":
            fresh = [i for i in structured.get("created", []) if i not in known.task_ids]
            known.task_ids = (*KNOWN_IDS, *known.task_ids[len(KNOWN_IDS) :], *fresh)[
                : len(KNOWN_IDS) + KEEP
            ]

    def _classify(
        self,
        call: Call,
        tool: Tool | None,
        line: bytes,
        reply: dict[str, Any] | None,
        latency_ms: float,
    ) -> Result:
        if reply is None:
            return Result("dropped", latency_ms)
        text = _texts(reply)
        sent = line.decode("utf-8", "replace")
        for marker in TRACEBACK_MARKERS:
            if marker in text and marker not in sent:
                raise Violation("traceback", f"{marker!r} in {text[:2000]!r}; call {call!r}")
        if "error" in reply:
            try:
                mcp_types.JSONRPCError.model_validate(reply)
            except ValueError as exc:
                raise Violation("contract", f"bad JSON-RPC error {reply!r}") from exc
            return Result("protocol_error", latency_ms, text)
        try:
            result = mcp_types.CallToolResult.model_validate(reply["result"])
        except (KeyError, ValueError) as exc:
            raise Violation("contract", f"not a CallToolResult: {_short(reply, 400)}") from exc
        if result.is_error:
            if re.fullmatch(r"Error executing tool [^:]*", text.strip()):
                # The SDK's text for an exception the server did not turn into a ToolError:
                # an unexpected failure, its traceback in the server log.
                raise Violation("unhandled", f"{text!r}; call {call!r}")
            return Result("tool_error", latency_ms, text)
        if tool is None:
            raise Violation("contract", f"unknown tool {call.tool!r} succeeded: {text[:300]}")
        if tool.output_validator is not None:
            errors = list(tool.output_validator.iter_errors(result.structured_content))
            if errors:
                raise Violation(
                    "contract",
                    f"{tool.name} structuredContent breaks its answer's model: "
                    f"{errors[0].message[:300]}; call {call!r}",
                )
        return Result("ok", latency_ms, text, result.structured_content)
