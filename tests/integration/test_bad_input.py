"""Bad input through the MCP client: each is a tool error naming the offending field, and
nothing is written."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agent, connect, table_rows

pytestmark = pytest.mark.anyio

VALID = {"id": "new-1", "title": "a valid task"}
METADATA_LIMIT = 16_384  # bytes of JSON


def names_field(text: str, field: str) -> bool:
    """Pydantic puts the error location (e.g. `tasks.1.title`) on a line of its own."""
    return re.search(rf"^{re.escape(field)}(\.\d+)?$", text, re.MULTILINE) is not None


def bad(**fields: Any) -> dict[str, Any]:
    return {"id": "new-2", "title": "bad one", **fields}


# (case, the second task of a batch, location the error must name)
TASK_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("complexity 11", bad(complexity=11), "complexity"),
    ("complexity 0", bad(complexity=0), "complexity"),
    ("complexity not a number", bad(complexity="five"), "complexity"),
    ("business_value 0", bad(business_value=0), "business_value"),
    ("business_value 21", bad(business_value=21), "business_value"),
    ("time_criticality 21", bad(time_criticality=21), "time_criticality"),
    ("risk_reduction 0", bad(risk_reduction=0), "risk_reduction"),
    ("job_size 21", bad(job_size=21), "job_size"),
    ("max_attempts 0", bad(max_attempts=0), "max_attempts"),
    ("missing title", {"id": "new-2"}, "title"),
    ("empty title", bad(title=""), "title"),
    ("blank title", bad(title="   "), "title"),
    ("title of 201 characters", bad(title="t" * 201), "title"),
    ("description over 8000", bad(description="d" * 8001), "description"),
    ("metadata over 16 KiB", bad(metadata={"blob": "x" * METADATA_LIMIT}), "metadata"),
    ("metadata not an object", bad(metadata=["a", "list"]), "metadata"),
    ("id with a space", bad(id="bad id"), "id"),
    ("id with a leading dash", bad(id="-dash"), "id"),
    ("id with a leading dot", bad(id="../etc/passwd"), "id"),
    ("id with non-ASCII letters", bad(id="täsk"), "id"),
    ("id of 101 characters", bad(id="i" * 101), "id"),
    ("id ending with a dot", bad(id="T1."), "id"),
    ("empty id", bad(id=""), "id"),
    ("invalid dependency id", bad(depends_on=["not valid"]), "depends_on"),
    ("201 dependencies", bad(depends_on=[f"d{n}" for n in range(201)]), "depends_on"),
    ("unknown field", bad(priority="high"), "priority"),
    ("due_at without a time zone", bad(due_at="2030-01-01T00:00:00"), "due_at"),
    ("due_at not a date", bad(due_at="next tuesday"), "due_at"),
    ("21 tags", bad(tags=[f"t{n}" for n in range(21)]), "tags"),
    ("empty tag", bad(tags=["ok", ""]), "tags"),
    ("empty epic_id", bad(epic_id=""), "epic_id"),
    ("milestone_id of 101 characters", bad(milestone_id="m" * 101), "milestone_id"),
    ("requires_approval not a boolean", bad(requires_approval="maybe"), "requires_approval"),
]


async def snapshot(agent: Agent) -> list[dict[str, Any]]:
    """Every task row plus the details that a write would change."""
    rows = table_rows(await agent.call("task_list", limit=500))
    return [await agent.call("task_get", task_id=row["id"]) for row in rows]


async def test_task_create_refuses_bad_fields_and_writes_nothing(
    state_root: Path, subtests: pytest.Subtests
) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "existing", "title": "already here"}])
        before = await snapshot(a)
        for case, task, field in TASK_CASES:
            with subtests.test(msg=case):
                text = await a.error("task_create", tasks=[VALID, task])
                assert names_field(text, f"tasks.1.{field}"), text
                assert await snapshot(a) == before


async def test_task_create_batch_shape(state_root: Path, subtests: pytest.Subtests) -> None:
    async with connect(state_root) as a:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("empty batch", {"tasks": []}, "tasks"),
            ("no tasks argument", {}, "tasks"),
            ("tasks not a list", {"tasks": {"id": "x", "title": "y"}}, "tasks"),
            ("5001 tasks", {"tasks": [{"title": "t"}] * 5001}, "tasks"),
        ]
        for case, arguments, field in cases:
            with subtests.test(msg=case):
                text = await a.error("task_create", **arguments)
                assert names_field(text, field), text
                assert (await a.call("task_list"))["rows"] == []


async def test_limits_are_inclusive(state_root: Path) -> None:
    """The largest accepted values sit right next to the refused ones above."""
    metadata = {"blob": "x" * (METADATA_LIMIT - len('{"blob": ""}'))}
    async with connect(state_root) as a:
        await a.call(
            "task_create",
            tasks=[
                {
                    "id": "i" * 100,
                    "title": "t" * 200,
                    "description": "d" * 8000,
                    "complexity": 10,
                    "business_value": 20,
                    "time_criticality": 1,
                    "risk_reduction": 20,
                    "job_size": 20,
                    "max_attempts": 20,
                    "tags": [f"t{n}" for n in range(20)],
                    "metadata": metadata,
                },
            ],
        )
        task = await a.call("task_get", task_id="i" * 100)
        assert len(task["title"]) == 200 and len(task["description"]) == 8000
        assert task["metadata"] == metadata
        over = {"blob": metadata["blob"] + "x"}
        text = await a.error("task_create", tasks=[{"id": "over", "title": "o", "metadata": over}])
        assert names_field(text, "tasks.0.metadata") and str(METADATA_LIMIT) in text


async def test_lease_tools_refuse_bad_arguments_and_write_nothing(
    state_root: Path, subtests: pytest.Subtests
) -> None:
    async with connect(state_root, WVO_AGENT_ID="holder") as a:
        await a.call(
            "task_create", tasks=[{"id": "held", "title": "h"}, {"id": "free", "title": "f"}]
        )
        claim = await a.call("claim_task", task_id="held")
        token = claim["lease_token"]
        held = {"task_id": "held", "lease_token": token}

        def checkpoint(**args: Any) -> tuple[str, dict[str, Any]]:
            return "checkpoint", {**held, "summary": "s", **args}

        def heartbeat(**args: Any) -> tuple[str, dict[str, Any]]:
            return "heartbeat", {**held, **args}

        def update(**args: Any) -> tuple[str, dict[str, Any]]:
            return "plan_update", {**held, "status": "done", **args}

        cases: list[tuple[str, tuple[str, dict[str, Any]], str]] = [
            ("checkpoint progress 101", checkpoint(progress=101), "progress"),
            ("checkpoint progress -1", checkpoint(progress=-1), "progress"),
            ("checkpoint without summary", ("checkpoint", held), "summary"),
            ("checkpoint empty summary", checkpoint(summary=""), "summary"),
            ("checkpoint summary 4001", checkpoint(summary="s" * 4001), "summary"),
            ("checkpoint next_steps 4001", checkpoint(next_steps="n" * 4001), "next_steps"),
            ("checkpoint 201 files", checkpoint(files=["f"] * 201), "files"),
            ("checkpoint file path 501", checkpoint(files=["p" * 501]), "files"),
            ("checkpoint empty lease_token", checkpoint(lease_token=""), "lease_token"),
            (
                "checkpoint no lease_token",
                ("checkpoint", {"task_id": "held", "summary": "s"}),
                "lease_token",
            ),
            ("heartbeat lease_seconds 0", heartbeat(lease_seconds=0), "lease_seconds"),
            ("heartbeat lease_seconds > 1 day", heartbeat(lease_seconds=86_401), "lease_seconds"),
            ("heartbeat lease_token 65", heartbeat(lease_token="t" * 65), "lease_token"),
            ("plan_update unknown status", update(status="finished"), "status"),
            ("plan_update status in capitals", update(status="DONE"), "status"),
            ("plan_update without status", ("plan_update", held), "status"),
            ("plan_update reason 4001", update(reason="r" * 4001), "reason"),
            ("plan_update bad task id", update(task_id="held!"), "task_id"),
            ("plan_update empty agent_id", update(agent_id=""), "agent_id"),
        ]
        before = await snapshot(a)
        for case, (tool, arguments), field in cases:
            with subtests.test(msg=case):
                text = await a.error(tool, **arguments)
                assert names_field(text, field), text
                assert await snapshot(a) == before
        task = await a.call("task_get", task_id="held")
        assert task["status"] == "in_progress" and task.get("latest_checkpoint") is None
        assert task["lease_expires_at"] == claim["lease_expires_at"]


async def test_claim_and_read_tools_refuse_bad_arguments(
    state_root: Path, subtests: pytest.Subtests
) -> None:
    async with connect(state_root, WVO_AGENT_ID="claimer") as a:
        await a.call("task_create", tasks=[{"id": "free", "title": "f"}])
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            ("claim lease_seconds 0", "claim_task", {"lease_seconds": 0}, "lease_seconds"),
            ("claim lease_seconds -5", "claim_task", {"lease_seconds": -5}, "lease_seconds"),
            ("claim lease > 1 day", "claim_task", {"lease_seconds": 86_401}, "lease_seconds"),
            ("claim lease not a number", "claim_task", {"lease_seconds": "x"}, "lease_seconds"),
            ("claim bad task id", "claim_task", {"task_id": "free task"}, "task_id"),
            ("claim empty agent_id", "claim_task", {"agent_id": ""}, "agent_id"),
            ("claim agent_id of 201", "claim_task", {"agent_id": "a" * 201}, "agent_id"),
            ("task_list limit 0", "task_list", {"limit": 0}, "limit"),
            ("task_list limit 501", "task_list", {"limit": 501}, "limit"),
            ("task_list unknown status", "task_list", {"status": "open"}, "status"),
            ("plan_next limit 0", "plan_next", {"limit": 0}, "limit"),
            ("plan_next limit 101", "plan_next", {"limit": 101}, "limit"),
            ("task_get empty id", "task_get", {"task_id": ""}, "task_id"),
            ("task_get id with a slash first", "task_get", {"task_id": "/free"}, "task_id"),
            ("task_get without id", "task_get", {}, "task_id"),
            ("claim misspelt lease_second", "claim_task", {"lease_second": 5}, "lease_second"),
            ("plan_next unknown argument", "plan_next", {"epic": "E1"}, "epic"),
        ]
        before = await snapshot(a)
        for case, tool, arguments, field in cases:
            with subtests.test(msg=case):
                text = await a.error(tool, **arguments)
                assert names_field(text, field), text
                assert await snapshot(a) == before
        counts = (await a.call("plan_next"))["counts"]
        assert counts["wip_global_used"] == 0 and counts["ready"] == 1


UTC_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"


async def test_issue_23_inputs_are_refused_saying_what_is_accepted(
    state_root: Path, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    """Inputs that answered only "Error executing tool" (an exception escaped): a path with a
    NUL, or one that loops (a link a sandboxed command can leave in the workspace), and a
    due_at that UTC cannot hold. NaN and Infinity in metadata cannot be sent by this client
    (it writes null): tests/security/test_fuzz.py sends them as raw frames."""
    workspace = tmp_path / "workspace"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "loop").symlink_to("loop")
    env = {
        "WVO_AGENT_ID": "holder",
        "WVO_WORKSPACE_ROOT": workspace,
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0,
        "WVO_SANDBOX_BACKEND": "none",  # refuses to run: nothing here may get that far
    }
    async with connect(state_root, **env) as a:
        await a.call("task_create", tasks=[{"id": "held", "title": "h"}])
        token = (await a.call("claim_task", task_id="held"))["lease_token"]
        on_task = {"task_id": "held", "lease_token": token}
        paths = ("inside the workspace root", "or omit")
        due = ("tasks.0.due_at", UTC_RANGE)
        cases: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
            ("workspace NUL", "sandbox_run", {"workspace": "\x00"}, ("workspace", "NUL", *paths)),
            (
                "workspace NUL, recorded on the task",
                "sandbox_run",
                {"workspace": "sub/\x00", **on_task},
                ("workspace", "NUL", *paths),
            ),
            (
                "workspace a link loop",
                "sandbox_run",
                {"workspace": "loop/inner", **on_task},
                ("workspace 'loop/inner' cannot be resolved", "Symlink loop", *paths),
            ),
            *(
                (
                    f"due_at {at}",
                    "task_create",
                    {"tasks": [{"id": "n", "title": "n", "due_at": at}]},
                    due,
                )
                for at in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")
            ),
        ]
        before = await snapshot(a)
        for case, tool, arguments, says in cases:
            with subtests.test(msg=case):
                if tool == "sandbox_run":
                    arguments = {"command": ["true"], **arguments}
                text = await a.error(tool, **arguments)
                assert not re.fullmatch(r"Error executing tool \w+", text), text
                for words in says:
                    assert words in text, (words, text)
                assert await snapshot(a) == before
        # The edges themselves are accepted, each stored as its UTC time.
        await a.call(
            "task_create",
            tasks=[
                {"id": "last", "title": "l", "due_at": "9999-12-31T23:59:59.999+00:00"},
                {"id": "first", "title": "f", "due_at": "0001-01-01T14:00:00+14:00"},
            ],
        )
        assert (await a.call("task_get", task_id="last"))["due_at"] == "9999-12-31T23:59:59.999Z"
        assert (await a.call("task_get", task_id="first"))["due_at"] == "0001-01-01T00:00:00.000Z"


async def test_text_with_a_nul_is_refused_on_postgresql(
    state_root: Path, pg_migrated: Callable[[str], str], subtests: pytest.Subtests
) -> None:
    """PostgreSQL text holds no NUL and psycopg raises rather than send one (SQLite keeps
    it): a refusal that says so, with nothing of the call kept, not "Error executing tool"."""
    url = pg_migrated("t")
    async with connect(state_root, WVO_DATABASE_URL=url, WVO_AUTOPILOT_HEALTH_INTERVAL_MS=0) as a:
        await a.call("task_create", tasks=[{"id": "kept", "title": "k"}])
        await a.call("context_write", section="notes", content="before")
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("a title", "task_create", {"tasks": [VALID, {"title": "a\x00b"}]}),
            ("an epic id", "task_create", {"tasks": [{"title": "t", "epic_id": "E\x00"}]}),
            ("a context section", "context_write", {"section": "notes", "content": "a\x00b"}),
        ]
        before = await snapshot(a), await a.call("context_read")
        for case, tool, arguments in cases:
            with subtests.test(msg=case):
                text = await a.error(tool, **arguments)
                assert "NUL character" in text and "send the text without it" in text, text
                assert (await snapshot(a), await a.call("context_read")) == before
        # NUL inside metadata is JSON (written as \u0000), so it is kept.
        await a.call("task_create", tasks=[{"id": "json", "title": "j", "metadata": {"k": "\x00"}}])
        assert (await a.call("task_get", task_id="json"))["metadata"] == {"k": "\x00"}
