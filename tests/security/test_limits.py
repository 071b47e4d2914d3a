"""Limits agree end to end: what the sandbox would refuse is refused where it enters (a task's
verify_command at task_create and roadmap import, verification limits at start-up), one
task_create call is capped in size, checkpoints per task are pruned to the latest N, and the
Docker backend keeps only the capped tail of each output stream while it runs. Each refusal
says what was wrong and what would be accepted, and the host state shows nothing changed."""

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests.exceptions
from pydantic import TypeAdapter, ValidationError

from tests.conftest import claim_when_possible, connect, open_db, wvo, wvo_process
from wvo_mcp import roadmap
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import MAX_BATCH_BYTES, TaskBatch, TaskSpec
from wvo_mcp.rules.bounds import (
    MAX_COMMAND_BYTES,
    MEMORY_RANGE,
    OUTPUT_BYTES_RANGE,
    TIMEOUT_RANGE,
    check_command,
)
from wvo_mcp.sandbox import docker_backend
from wvo_mcp.sandbox.outcome import result
from wvo_mcp.sandbox.output import Tail
from wvo_mcp.sandbox.request import Request, validate
from wvo_mcp.services.leases import CHECKPOINTS_KEPT
from wvo_mcp.store.sql import queries

pytestmark = pytest.mark.anyio

QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0}


def _args_of_size(size: int) -> list[str]:
    """An argv whose size as the sandbox counts it (UTF-8 plus one byte each) is `size`,
    made of arguments short enough for TaskSpec's per-argument limit (4000)."""
    argv = ["python"]
    left = size - len("python") - 1
    while left > 4001:
        argv.append("x" * 3999)  # costs 4000, and leaves at least 2 for the last one
        left -= 4000
    argv.append("x" * (left - 1))
    assert sum(len(a.encode()) + 1 for a in argv) == size
    return argv


# (case, command, what the refusal must say)
REFUSED_COMMANDS: list[tuple[str, Any, str]] = [
    ("NUL in a shell string", "pytest\0 -q", "contains a NUL character"),
    ("NUL in an argument", ["pytest", "-k", "a\0b"], "contains a NUL character"),
    ("one byte over the size cap", _args_of_size(MAX_COMMAND_BYTES + 1), f"{MAX_COMMAND_BYTES}"),
    ("blank shell string", "  \t ", "is empty"),
    ("empty argv", [], "is empty"),
]
ACCEPTED_COMMANDS: list[tuple[str, Any]] = [
    ("argv", ["pytest", "-q"]),
    ("shell string", "make test && echo ok"),
    ("exactly at the size cap", _args_of_size(MAX_COMMAND_BYTES)),
    ("unicode", ["echo", "héllo ✓"]),
]


# ---- the one command rule, pure ------------------------------------------------------


@pytest.mark.parametrize(("case", "command", "message"), REFUSED_COMMANDS)
def test_check_command_refuses_saying_what_is_accepted(case: str, command: Any, message: str):
    with pytest.raises(ValidationFailed) as info:
        check_command(command, "verify_command")
    text = str(info.value)
    assert text.startswith("verify_command") and message in text, text
    assert "give an argv list" in text or "at most" in text or "without NUL" in text, text


def test_an_empty_program_is_refused_by_the_rule() -> None:
    with pytest.raises(ValidationFailed, match="first argument \\(the program\\) is empty"):
        check_command(["", "-q"])


@pytest.mark.parametrize(("case", "command"), ACCEPTED_COMMANDS)
def test_check_command_accepts(case: str, command: Any) -> None:
    check_command(command)


@pytest.mark.parametrize(
    ("case", "command"),
    [(case, command) for case, command, _ in REFUSED_COMMANDS] + ACCEPTED_COMMANDS,
)
def test_the_sandbox_and_task_spec_agree(tmp_path: Path, case: str, command: Any) -> None:
    """One rule: TaskSpec refuses a verify_command exactly when the sandbox would refuse it
    (for commands within TaskSpec's per-argument limits)."""
    try:
        validate(Request(command=command, workspace=tmp_path))
        sandbox_refuses = False
    except ValidationFailed:
        sandbox_refuses = True
    try:
        TaskSpec(title="t", verify_command=command)
        spec_refuses = False
    except ValidationError as exc:
        spec_refuses = True
        assert exc.errors()[0]["loc"][0] == "verify_command", exc
    assert spec_refuses == sandbox_refuses


def test_a_roadmap_with_a_command_the_sandbox_would_refuse_is_refused() -> None:
    text = json.dumps({"version": 1, "tasks": [{"id": "a", "title": "A"}, _nul_task("b")]})
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(text, "road.json", as_json=True)
    assert "task #2 (b)" in str(info.value)
    assert "verify_command" in str(info.value) and "NUL" in str(info.value)


def _nul_task(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "title": task_id, "verify_command": ["pytest", "-k", "a\0b"]}


# ---- verification limits at start-up, pure ------------------------------------------------

# (variable, value, what the message must say); the ranges are the sandbox's constants.
BAD_SETTINGS: list[tuple[str, str, str]] = [
    ("WVO_VERIFY_TIMEOUT_SECONDS", "3601", "use 0.1 to 3600 seconds"),
    ("WVO_VERIFY_TIMEOUT_SECONDS", "0.05", "use 0.1 to 3600 seconds"),
    ("WVO_VERIFY_TIMEOUT_SECONDS", "nan", "out of range"),
    ("WVO_VERIFY_TIMEOUT_SECONDS", "inf", "out of range"),
    ("WVO_VERIFY_TIMEOUT_SECONDS", "soon", "not a number"),
    ("WVO_VERIFY_MEMORY_MB", "15", f"use {MEMORY_RANGE[0]} to {MEMORY_RANGE[1]} MB"),
    ("WVO_VERIFY_MEMORY_MB", "65537", f"use {MEMORY_RANGE[0]} to {MEMORY_RANGE[1]} MB"),
    ("WVO_SANDBOX_OUTPUT_BYTES", "255", f"use 256 to {OUTPUT_BYTES_RANGE[1]} bytes"),
    ("WVO_SANDBOX_OUTPUT_BYTES", str(OUTPUT_BYTES_RANGE[1] + 1), "out of range"),
]


@pytest.mark.parametrize(("name", "raw", "message"), BAD_SETTINGS)
def test_out_of_range_verification_settings_are_refused(name: str, raw: str, message: str):
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: raw})
    assert str(info.value).startswith(f"{name}="), info.value
    assert message in str(info.value)


def test_the_ends_of_each_range_are_accepted_and_the_defaults_lie_within() -> None:
    ends = Settings.from_env(
        {
            "WVO_VERIFY_TIMEOUT_SECONDS": str(TIMEOUT_RANGE[0]),
            "WVO_VERIFY_MEMORY_MB": str(MEMORY_RANGE[1]),
            "WVO_SANDBOX_OUTPUT_BYTES": str(OUTPUT_BYTES_RANGE[0]),
        }
    )
    assert ends.verify_timeout_seconds == TIMEOUT_RANGE[0]
    assert ends.verify_memory_mb == MEMORY_RANGE[1]
    assert ends.sandbox_output_bytes == OUTPUT_BYTES_RANGE[0]
    top = Settings.from_env(
        {
            "WVO_VERIFY_TIMEOUT_SECONDS": str(TIMEOUT_RANGE[1]),
            "WVO_VERIFY_MEMORY_MB": str(MEMORY_RANGE[0]),
            "WVO_SANDBOX_OUTPUT_BYTES": str(OUTPUT_BYTES_RANGE[1]),
        }
    )
    assert (top.verify_timeout_seconds, top.verify_memory_mb) == (TIMEOUT_RANGE[1], 16)
    defaults = Settings()
    assert TIMEOUT_RANGE[0] <= defaults.verify_timeout_seconds <= TIMEOUT_RANGE[1]
    assert MEMORY_RANGE[0] <= defaults.verify_memory_mb <= MEMORY_RANGE[1]
    assert OUTPUT_BYTES_RANGE[0] <= defaults.sandbox_output_bytes <= OUTPUT_BYTES_RANGE[1]


def _tree(root: Path) -> dict[str, str]:
    """Every file under root, by path, with a digest of its bytes."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(("name", "raw", "message"), BAD_SETTINGS[:1] + BAD_SETTINGS[5:8])
def test_serve_with_a_bad_limit_exits_2_before_speaking_mcp(
    state_root: Path, monkeypatch: pytest.MonkeyPatch, name: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(name, raw)
    done = wvo_process(state_root, "serve")
    assert done.returncode == 2, done
    assert done.stdout == ""  # not one byte of MCP
    assert f"wvo-mcp: {name}=" in done.stderr and message in done.stderr, done.stderr
    assert not (state_root / "orchestrator.db").exists()
    assert not state_root.exists(), _tree(state_root)


def test_serve_with_a_bad_limit_leaves_an_existing_database_alone(
    state_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    road = tmp_path / "road.json"
    road.write_text(json.dumps({"version": 1, "tasks": [{"id": "a", "title": "A"}]}))
    assert wvo(state_root, "import", str(road)).returncode == 0
    before = _tree(state_root)
    assert "orchestrator.db" in before
    monkeypatch.setenv("WVO_VERIFY_MEMORY_MB", "100000")
    done = wvo_process(state_root, "serve")
    assert done.returncode == 2 and done.stdout == ""
    assert "WVO_VERIFY_MEMORY_MB=100000 is out of range; use 16 to 65536 MB" in done.stderr
    assert _tree(state_root) == before


# ---- task_create through the MCP client --------------------------------------------------


def _database(state_root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show a refused call wrote nothing at all."""
    with open_db(state_root) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: sorted(
                (tuple(row) for row in conn.execute(f'SELECT * FROM "{table}"')), key=repr
            )
            for table in tables
        }


def _task_ids(state_root: Path) -> list[str]:
    with open_db(state_root) as conn:
        return [row["id"] for row in conn.execute("SELECT id FROM tasks ORDER BY id")]


async def test_task_create_refuses_a_verify_command_the_sandbox_would_refuse(
    state_root: Path, subtests: pytest.Subtests
) -> None:
    # An empty list or argument is refused by the field's shape first, in pydantic's words.
    shape = {"empty argv": "at least 1 item"}
    cases = [
        (case, command, shape.get(case, message)) for case, command, message in REFUSED_COMMANDS
    ]
    cases.append(("empty program", ["", "-q"], "at least 1 character"))
    async with connect(state_root, **QUIET) as a:
        await a.call("task_create", tasks=[{"id": "existing", "title": "already here"}])
        before = _database(state_root)
        for case, command, message in cases:
            with subtests.test(msg=case):
                text = await a.error(
                    "task_create",
                    tasks=[
                        {"id": "ok", "title": "ok"},
                        {"id": "bad", "title": "bad", "verify_command": command},
                    ],
                )
                assert "tasks.1.verify_command" in text and message in text, text
                assert _database(state_root) == before
        # At the cap exactly, it is accepted (and stored as given).
        at_cap = _args_of_size(MAX_COMMAND_BYTES)
        await a.call(
            "task_create", tasks=[{"id": "at-cap", "title": "t", "verify_command": at_cap}]
        )
    with open_db(state_root) as conn:
        stored = conn.execute("SELECT verify_command FROM tasks WHERE id = 'at-cap'").fetchone()
    assert json.loads(stored[0]) == at_cap
    assert _task_ids(state_root) == ["at-cap", "existing"]


def test_roadmap_import_refuses_a_verify_command_the_sandbox_would_refuse(
    state_root: Path, tmp_path: Path
) -> None:
    road = tmp_path / "road.json"
    road.write_text(
        json.dumps({"version": 1, "tasks": [{"id": "a", "title": "A"}, _nul_task("b")]})
    )
    done = wvo(state_root, "import", str(road))
    assert done.returncode == 2
    assert "task #2 (b)" in done.stderr and "verify_command contains a NUL" in done.stderr
    assert not (state_root / "orchestrator.db").exists()


def _big_batch(count: int) -> list[dict[str, Any]]:
    """`count` tasks, each valid alone (metadata under its 16 KiB cap), ~16 KB each."""
    return [
        {"id": f"big-{n:04d}", "title": f"big {n:04d}", "metadata": {"blob": "x" * 16_000}}
        for n in range(count)
    ]


def test_the_batch_cap_is_exact() -> None:
    batch = TypeAdapter(TaskBatch)
    one = len(json.dumps(_big_batch(1)[0], separators=(",", ":")).encode())
    fits = (MAX_BATCH_BYTES - 1) // (one + 1)  # n tasks: n * (one + 1) + 1 bytes
    accepted = batch.validate_python(_big_batch(fits))
    assert len(accepted) == fits
    with pytest.raises(ValidationError) as info:
        batch.validate_python(_big_batch(fits + 1))
    text = str(info.value)
    size = (fits + 1) * (one + 1) + 1
    assert f"are {size} bytes as JSON" in text and f"at most {MAX_BATCH_BYTES} bytes" in text
    assert "split the batch" in text


async def test_task_create_refuses_an_oversized_call_and_a_split_one_goes_through(
    state_root: Path, tmp_path: Path
) -> None:
    tasks = _big_batch(270)  # ~4.3 MB: over the 4 MiB cap, each task valid on its own
    assert len(json.dumps(tasks).encode()) > MAX_BATCH_BYTES
    async with connect(state_root, **QUIET) as a:
        await a.call("task_create", tasks=[{"id": "existing", "title": "already here"}])
        before = _database(state_root)
        text = await a.error("task_create", tasks=tasks)
        assert "these 270 tasks are" in text and f"at most {MAX_BATCH_BYTES} bytes" in text, text
        assert "split the batch" in text
        assert _database(state_root) == before
        # Split as the message says, the same tasks go in.
        await a.call("task_create", tasks=tasks[:135])
        await a.call("task_create", tasks=tasks[135:])
    assert len(_task_ids(state_root)) == 271
    # A person's roadmap import is not capped this way.
    road = tmp_path / "road.json"
    road.write_text(json.dumps({"version": 1, "tasks": tasks}))
    other = tmp_path / "other-state"
    done = wvo(other, "import", str(road))
    assert done.returncode == 0, done.stderr
    assert len(_task_ids(other)) == 270


# ---- checkpoints are pruned to the latest N per task -------------------------------------


async def test_checkpoints_are_pruned_to_the_latest_per_task(state_root: Path) -> None:
    extra = 7
    async with connect(state_root, WVO_AGENT_ID="writer", **QUIET) as a:
        await a.call(
            "task_create", tasks=[{"id": "long", "title": "L"}, {"id": "short", "title": "S"}]
        )
        short = await claim_when_possible(a, task_id="short")
        await a.call(
            "checkpoint", task_id="short", lease_token=short["lease_token"], summary="only one"
        )
        await a.call(
            "plan_update", task_id="short", lease_token=short["lease_token"], status="pending"
        )
        held = await claim_when_possible(a, task_id="long")
        for n in range(1, CHECKPOINTS_KEPT + extra + 1):
            done = await a.call(
                "checkpoint", task_id="long", lease_token=held["lease_token"], summary=f"step {n}"
            )
            assert done["seq"] == n  # seqs keep increasing through the pruning
            if n in (CHECKPOINTS_KEPT, CHECKPOINTS_KEPT + 1):  # the first one to be pruned
                oldest = n - CHECKPOINTS_KEPT + 1
                assert _checkpoints(state_root, "long")[0] == (oldest, f"step {oldest}")
        latest = (await a.call("task_get", task_id="long"))["latest_checkpoint"]
    rows = _checkpoints(state_root, "long")
    assert len(rows) == CHECKPOINTS_KEPT
    newest = CHECKPOINTS_KEPT + extra
    assert rows[-1] == (newest, f"step {newest}") and latest["seq"] == newest
    assert [seq for seq, _ in rows] == list(range(extra + 1, newest + 1))
    assert _checkpoints(state_root, "short") == [(1, "only one")]  # other tasks untouched


def _checkpoints(state_root: Path, task_id: str) -> list[tuple[int, str]]:
    with open_db(state_root) as conn:
        return [
            (row["seq"], row["summary"])
            for row in conn.execute(
                "SELECT seq, summary FROM checkpoints WHERE task_id = ? ORDER BY seq", (task_id,)
            )
        ]


def test_the_prune_query_keeps_exactly_the_latest() -> None:
    """The named query alone, on a bare table: fewer than N rows are left alone."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE checkpoints (task_id TEXT, seq INTEGER, PRIMARY KEY (task_id, seq))")
    conn.executemany("INSERT INTO checkpoints VALUES ('a', ?)", [(n,) for n in range(1, 8)])
    conn.executemany("INSERT INTO checkpoints VALUES ('b', ?)", [(n,) for n in range(1, 4)])
    conn.execute(queries()["prune_checkpoints"], ("a", 5))
    conn.execute(queries()["prune_checkpoints"], ("b", 5))
    kept = conn.execute("SELECT task_id, seq FROM checkpoints ORDER BY 1, 2").fetchall()
    assert kept == [("a", n) for n in range(3, 8)] + [("b", n) for n in range(1, 4)]


# ---- the Docker backend drains logs into the capped tail while it runs ---------------------


class FakeStream:
    """What `container.logs(stream=True, follow=True)` returns: chunks as they come, and a
    close() that ends a read in progress. `hold=True`: it stays open until closed, like the
    stream of a container that is still running; `fail_after=n`: the connection breaks."""

    def __init__(self, chunks: Iterator[bytes], hold: bool = False, fail_after: int = -1):
        self.chunks, self.hold, self.fail_after = chunks, hold, fail_after
        self.closed = threading.Event()
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.sent == self.fail_after:
                raise requests.exceptions.ChunkedEncodingError("connection broken")
            if self.closed.is_set():
                return
            self.sent += 1
            yield chunk
        if self.hold:
            self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


class FakeContainer:
    """Enough of docker's Container for run(): it records what was asked, in order."""

    def __init__(self, out: Iterator[bytes], err: Iterator[bytes], *, hold=False, hang=False):
        self.out, self.err, self.hold, self.hang = out, err, hold, hang
        self.calls: list[str] = []
        self.streams: list[FakeStream] = []
        self.attrs: dict[str, Any] = {"State": {"OOMKilled": False}}

    def start(self) -> None:
        self.calls.append("start")

    def logs(self, **kwargs: Any) -> FakeStream:
        assert kwargs["stream"] is True and kwargs["follow"] is True
        assert kwargs["stdout"] != kwargs["stderr"], "each stream on its own"
        self.calls.append("logs " + ("stdout" if kwargs["stdout"] else "stderr"))
        stream = FakeStream(self.out if kwargs["stdout"] else self.err, hold=self.hold)
        self.streams.append(stream)
        return stream

    def wait(self, timeout: float) -> dict[str, int]:
        self.calls.append("wait")
        if self.hang:
            raise requests.exceptions.ReadTimeout("read timed out")
        return {"StatusCode": 3}

    def kill(self) -> None:
        self.calls.append("kill")

    def reload(self) -> None:
        self.calls.append("reload")

    def remove(self, force: bool) -> None:
        self.calls.append("remove")


class FakeClient:
    def __init__(self, container: FakeContainer) -> None:
        self.containers = self
        self.container = container
        self.closed = False

    def create(self, **options: Any) -> FakeContainer:
        return self.container

    def close(self) -> None:
        self.closed = True


def _many(chunk: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield chunk


def test_drain_keeps_the_tail_of_a_long_stream() -> None:
    tail = Tail(100)
    docker_backend.drain(FakeStream(_many(b"0123456789" * 100, 10_000)), tail)  # 10 MB
    assert tail.total == 10_000_000 and tail.truncated
    assert tail.text().endswith("0123456789" * 10)
    assert "9999900 earlier bytes cut" in tail.text()


def test_drain_keeps_what_arrived_when_the_connection_breaks() -> None:
    tail = Tail(100)
    docker_backend.drain(FakeStream(_many(b"ok\n", 5), fail_after=3), tail)
    assert tail.text() == "ok\n" * 3 and not tail.truncated


def _run(monkeypatch: pytest.MonkeyPatch, container: FakeContainer, tmp_path: Path, **req: Any):
    client = FakeClient(container)
    monkeypatch.setattr(docker_backend, "_client", lambda: client)
    # The container's settings are options()'s business (tested with the backend); the fake
    # engine takes any.
    monkeypatch.setattr(docker_backend, "options", lambda *args, **kwargs: {})
    layout: Any = None
    outcome = docker_backend.run(
        Request(command=["true"], workspace=tmp_path, **req), "image:tag", 256, layout
    )
    assert client.closed and container.calls[-1] == "remove"
    assert all(stream.closed.is_set() for stream in container.streams)
    return outcome


def test_run_streams_both_outputs_into_capped_tails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    container = FakeContainer(_many(b"o" * 1000, 1000), iter([b"warning\n", b"error: boom\n"]))
    outcome = _run(monkeypatch, container, tmp_path)
    # The streams are followed from the start, before the wait, not read at the end.
    assert container.calls[:4] == ["start", "logs stdout", "logs stderr", "wait"]
    assert outcome.returncode == 3 and not outcome.timed_out
    assert outcome.stdout.total == 1_000_000 and outcome.stdout.text().endswith("o" * 256)
    assert outcome.stderr.text() == "warning\nerror: boom\n"
    shown = result("docker", outcome, memory_mb=512, pids_limit=256)
    assert set(shown.model_dump()) == {
        "backend",
        "exit_code",
        "timed_out",
        "killed_reason",
        "stdout_tail",
        "stderr_tail",
        "truncated",
        "duration_s",
        "peak_memory_mb",
    }
    assert shown.exit_code == 3 and shown.truncated and shown.stderr_tail.endswith("boom\n")


def test_a_stream_that_never_ends_is_given_up_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docker_backend, "DRAIN_DEADLINE_S", 0.3)
    container = FakeContainer(iter([b"partial"]), iter([]), hold=True, hang=True)
    started = time.monotonic()
    outcome = _run(monkeypatch, container, tmp_path, timeout_s=0.1)
    assert time.monotonic() - started < 5
    assert "kill" in container.calls and outcome.timed_out and outcome.returncode is None
    assert outcome.stdout.text() == "partial"
