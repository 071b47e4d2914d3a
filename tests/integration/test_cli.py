"""The `wvo-mcp` command line (run in this process by `wvo`): import/export, status, show, and
refusals."""

import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from tests.conftest import wvo
from tests.landing_state import fill_state
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

ROOT = Path(__file__).resolve().parents[2]
ROADMAP = ROOT / "state" / "roadmap.yaml"
ROADMAP_TASKS = 29


def ok(state_root: Path, *args: str) -> str:
    result = wvo(state_root, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def task_count(state_root: Path) -> int:
    """Tasks in the database, read with plain sqlite3 (0 when there is no database)."""
    db = state_root / "orchestrator.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM tasks").fetchone()[0])


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def graph(tasks: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {t["id"]: set(t.get("depends_on") or []) for t in tasks}


def write_roadmap(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "tasks": tasks}, sort_keys=False))
    return path


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """A state folder with the example roadmap imported."""
    state = tmp_path / "state"
    out = ok(state, "import", str(ROADMAP))
    assert f"imported {ROADMAP_TASKS} tasks" in out
    return state


def test_import_then_export_round_trips(imported: Path, tmp_path: Path) -> None:
    original = yaml.safe_load(ROADMAP.read_text())["tasks"]
    assert len(original) == ROADMAP_TASKS
    assert task_count(imported) == ROADMAP_TASKS

    exported_file = tmp_path / "exported.yaml"
    assert f"exported {ROADMAP_TASKS} tasks" in ok(imported, "export", str(exported_file))
    exported = yaml.safe_load(exported_file.read_text())
    assert exported["version"] == 1
    assert graph(exported["tasks"]) == graph(original)
    # Every field a planner wrote survives (job_size may be filled in from complexity).
    by_id = {t["id"]: t for t in exported["tasks"]}
    for task in original:
        copy = by_id[task["id"]]
        for key, value in task.items():
            if key == "depends_on":
                continue
            if key == "due_at":
                assert moment(copy[key]) == moment(value), task["id"]
                continue
            assert copy[key] == value, (task["id"], key)

    second = tmp_path / "second"
    assert f"imported {ROADMAP_TASKS} tasks" in ok(second, "import", str(exported_file))
    again = yaml.safe_load(ok(second, "export"))  # export to stdout
    assert again == exported


def test_status_prints_tables(imported: Path) -> None:
    out = ok(imported, "status")
    assert "top ready" in out
    assert "in progress" in out
    assert "pending 29" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "top ready" in line)
    assert lines[header + 1].split()[:2] == ["task", "score"]
    top = lines[header + 2].split()[0]
    assert top in {t["id"] for t in yaml.safe_load(ROADMAP.read_text())["tasks"]}


def test_status_json(imported: Path) -> None:
    report = json.loads(ok(imported, "status", "--json", "--top", "3"))
    counts = report["counts"]
    assert sum(counts["by_status"].values()) == ROADMAP_TASKS
    assert counts["ready"] + counts["waiting_on_dependencies"] == ROADMAP_TASKS
    assert counts["ready"] > 0
    assert report["in_progress"] == [] and report["dead_letters"] == []
    top = report["top_ready"]
    assert len(top) == 3
    scores = [t["score"] for t in top]
    assert scores == sorted(scores, reverse=True)


def test_autopilot_status_prints_the_merge_queue_and_its_figures(state_root: Path) -> None:
    """One line per open entry (target, place, task, state, wait, returns, title, why held)
    and the figures; a title's control characters never reach the terminal."""
    anyio.run(partial(fill_state, state_root, title="\x1b[2Jwipes\x07 the screen", ago=7200))
    lines = ok(state_root, "autopilot", "status").splitlines()
    assert lines[0] == "no autopilot has run in the last hour"
    assert lines[1] == "merge queue: 4 open entries"
    queue = lines[2:6]
    assert [line.split(" for ")[0] for line in queue] == [
        "  main #1 B queued",
        "  main #2 Q queued",
        "  main - H held",
        "  main - R review",
    ]
    # B queued 660 s after the queue began, two hours ago: waiting 1h49m (or a bit more).
    assert re.fullmatch(r"  main #1 B queued for 1h\d\dm, returned 1x: comes back once", queue[0])
    assert queue[1].endswith(": ?[2Jwipes? the screen".replace("?", " ")), queue[1]
    assert re.search(r"held for 1h\d\dm: held for a person \[its conflict is with a", queue[2])
    assert "\x1b" not in "\n".join(lines) and "\x07" not in "\n".join(lines)
    figures = lines[6]
    assert figures.startswith(
        "  last 24 h: 1 landed (0.04/h), queue wait p50 10m00s p95 10m00s, 1 returned (1 per "
        "landed); per landed change: claude/sonnet 550 tokens $"
    ), figures
    assert "; codex/medium 1200 tokens $" in figures
    assert len(lines) == 7


def test_status_names_what_stays_put_until_a_person_acts_and_the_way_out(
    state_root: Path,
) -> None:
    anyio.run(partial(fill_state, state_root))  # H: a submission held for a person

    async def block(orch: Orchestrator) -> None:
        await orch.create_tasks([TaskSpec(id="X", title="needs a key")], "planner")
        claim = await orch.claim("a", task_id="X")
        await orch.update_status(
            "X", Status.BLOCKED, "a", token=claim.lease_token, reason="no \x1b[2Jkey here"
        )

    anyio.run(partial(_with_orchestrator, state_root, block))
    out = ok(state_root, "status")
    stopped = out.split("stopped until a person acts:\n")[1].split("\n\n")[0].splitlines()
    assert re.fullmatch(
        r"  H needs_review for \d+ s: its conflict is with a person's commit.*", stopped[0]
    )
    assert stopped[1] == (
        "    `wvo-mcp requeue H` gives it to a worker again, or `wvo-mcp done H` once you "
        "landed it yourself"
    )
    assert re.fullmatch(r"  X blocked for \d+ s: no  \[2Jkey here", stopped[2])
    assert stopped[3] == "    `wvo-mcp requeue X` once it can go on, or `wvo-mcp cancel X`"
    assert "\x1b" not in out
    report = json.loads(ok(state_root, "status", "--json"))
    assert [(t["id"], t["status"]) for t in report["stopped"]] == [
        ("H", "needs_review"),
        ("X", "blocked"),
    ]
    # Once a person acts, it is no longer listed.
    ok(state_root, "requeue", "X")
    assert [t["id"] for t in json.loads(ok(state_root, "status", "--json"))["stopped"]] == ["H"]


async def _with_orchestrator(
    state_root: Path, act: Callable[[Orchestrator], Awaitable[None]]
) -> None:
    orch = await Orchestrator.open(Settings(state_root=state_root))
    try:
        await act(orch)
    finally:
        await orch.close()


def test_show_prints_one_task_as_json(imported: Path) -> None:
    task = json.loads(ok(imported, "show", "E1.M1.T4"))
    assert task["id"] == "E1.M1.T4"
    assert task["status"] == "pending"
    assert [d["id"] for d in task["dependencies"]]
    assert task["recent_events"][0]["kind"] == "created"
    # A pending task says where routing would send it now, and why: where a person looks
    # when it does not move (the refused re-queue points here).
    assert task["route"]["task_id"] == "E1.M1.T4"
    assert task["route"]["routed"] and task["route"]["reason"]
    refused = wvo(imported, "requeue", "E1.M1.T4")
    assert refused.returncode == 2
    assert "`wvo-mcp show E1.M1.T4` says where it would go and why" in refused.stderr
    missing = wvo(imported, "show", "E9.M9.T9")
    assert missing.returncode == 2
    assert "E9.M9.T9" in missing.stderr


BAD_ROADMAPS = [
    pytest.param(
        [
            {"id": "A.1", "title": "a", "depends_on": ["B.1"]},
            {"id": "B.1", "title": "b", "depends_on": ["A.1"]},
        ],
        ["A.1", "B.1", "cycle"],
        id="cycle",
    ),
    pytest.param(
        [
            {"id": "A.1", "title": "a"},
            {"id": "B.1", "title": "b", "depends_on": ["A.1", "Z.9"]},
        ],
        # The message must say which task refers to the unknown id, not only the id.
        ["B.1", "Z.9", "depend"],
        id="unknown-dependency",
    ),
    pytest.param(
        [
            {"id": "A.1", "title": "a"},
            {"id": "B.1", "title": "b", "complexity": 11},
        ],
        ["B.1", "complexity"],
        id="bad-field",
    ),
    pytest.param(
        [{"id": "A.1", "title": "a"}, {"id": "B.1", "title": "b", "owner": "me"}],
        ["B.1", "owner"],
        id="unknown-field",
    ),
    pytest.param(
        [{"id": "A.1", "title": "a"}, {"id": "A.1", "title": "again"}],
        ["A.1", "twice"],
        id="duplicate-id",
    ),
]


@pytest.mark.parametrize(("tasks", "named"), BAD_ROADMAPS)
def test_bad_roadmap_exits_2_and_writes_nothing(
    tasks: list[dict[str, Any]], named: list[str], tmp_path: Path
) -> None:
    roadmap = write_roadmap(tmp_path / "bad.yaml", tasks)
    fresh = tmp_path / "fresh"
    result = wvo(fresh, "import", str(roadmap))
    assert result.returncode == 2, result.stdout
    message = result.stderr.splitlines()[-1]
    assert message.startswith("wvo-mcp: ")
    for word in named:
        assert word in message, f"{word!r} not named in: {message}"
    assert result.stdout == ""
    assert task_count(fresh) == 0


def test_bad_roadmap_leaves_existing_state_untouched(imported: Path, tmp_path: Path) -> None:
    before = ok(imported, "export")
    roadmap = write_roadmap(
        tmp_path / "bad.yaml",
        [
            {"id": "new.1", "title": "fine"},
            {"id": "new.2", "title": "depends on a later cycle", "depends_on": ["new.3"]},
            {"id": "new.3", "title": "c", "depends_on": ["new.2"]},
        ],
    )
    assert wvo(imported, "import", str(roadmap)).returncode == 2
    clash = write_roadmap(tmp_path / "clash.yaml", [{"id": "E1.M1.T1", "title": "again"}])
    result = wvo(imported, "import", str(clash))
    assert result.returncode == 2 and "E1.M1.T1" in result.stderr
    assert task_count(imported) == ROADMAP_TASKS
    assert ok(imported, "export") == before


async def claim(state_root: Path, task_id: str) -> None:
    """An agent claims the task, through the services a server runs."""
    settings = Settings.from_env({"WVO_STATE_ROOT": str(state_root), "WVO_OTEL_ENABLED": "0"})
    orch = await Orchestrator.open(settings)
    try:
        assert (await orch.claim("agent-1", task_id)).claimed
    finally:
        await orch.close()


def test_import_update_applies_an_edited_roadmap(imported: Path, tmp_path: Path) -> None:
    anyio.run(claim, imported, "E1.M1.T2")
    tasks = yaml.safe_load(ok(imported, "export"))["tasks"]
    by_id = {t["id"]: t for t in tasks}
    by_id["E1.M1.T1"]["title"] = "Define the checkout v3 contract"
    by_id["E1.M1.T1"]["tags"] = ["api"]
    by_id["E1.M1.T2"]["title"] = "Renamed while claimed"
    gone = tasks.pop()
    tasks.append({"id": "NEW.1", "title": "a new task", "depends_on": ["E1.M1.T1"]})
    edited = write_roadmap(tmp_path / "edited.yaml", tasks)

    # Without --update an existing id is refused, as it always was.
    refused = wvo(imported, "import", str(edited))
    assert refused.returncode == 2 and "already exist" in refused.stderr
    before = ok(imported, "export")
    would = ok(imported, "import", "--update", "--dry-run", str(edited))
    assert ok(imported, "export") == before
    done = ok(imported, "import", "--update", str(edited))
    for out, verb in ((would, "would "), (done, "")):
        lines = out.splitlines()
        assert lines[0] == (
            f"{imported / 'orchestrator.db'}: {verb}update 1, {verb}add 1, "
            f"{ROADMAP_TASKS - 3} unchanged, 1 skipped, 1 not in {edited}"
        )
        assert f"  {verb}update E1.M1.T1: title, tags" in lines
        assert f"  {verb}add NEW.1" in lines
        skipped = next(line for line in lines if line.startswith("  skipped E1.M1.T2"))
        assert "(in_progress; the file changes title)" in skipped and "claimed" in skipped
        assert f"  {gone['id']} (pending) {gone['title']}" in lines
    assert would.splitlines()[-1] == "nothing changed (--dry-run)"

    after = {t["id"]: t for t in yaml.safe_load(ok(imported, "export"))["tasks"]}
    assert after["E1.M1.T1"]["title"] == "Define the checkout v3 contract"
    assert after["E1.M1.T2"]["title"] != "Renamed while claimed"
    assert gone["id"] in after and after["NEW.1"]["depends_on"] == ["E1.M1.T1"]
    shown = json.loads(ok(imported, "show", "E1.M1.T2"))
    assert (shown["status"], shown["assigned_to"]) == ("in_progress", "agent-1")

    alone = wvo(imported, "import", "--dry-run", str(edited))
    assert alone.returncode == 2 and "--dry-run goes with --update" in alone.stderr


def test_unreadable_roadmaps_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    missing = wvo(state, "import", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("tasks: [unclosed\n")
    broken = wvo(state, "import", str(not_yaml))
    assert broken.returncode == 2 and "YAML" in broken.stderr
    wrong_version = write_roadmap(tmp_path / "v2.yaml", [{"id": "a", "title": "a"}])
    wrong_version.write_text(wrong_version.read_text().replace("version: 1", "version: 2"))
    result = wvo(state, "import", str(wrong_version))
    assert result.returncode == 2 and "version" in result.stderr
    assert task_count(state) == 0


def test_newer_schema_is_refused(imported: Path) -> None:
    db = imported / "orchestrator.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    result = wvo(imported, "status")
    assert result.returncode == 2, result.stderr
    assert "upgrade" in result.stderr
    assert "99" in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == ROADMAP_TASKS


def test_a_person_tells_pauses_redirects_and_answers_from_the_cli(state_root: Path) -> None:
    async def setup(orch: Orchestrator) -> None:
        await orch.create_tasks(
            [TaskSpec(id="T", title="t", epic_id="E"), TaskSpec(id="Q", title="pick")], "p"
        )
        await orch.claim("a", task_id="T")
        asking = await orch.claim("b", task_id="Q")
        assert asking.lease_token is not None
        await orch.ask("Q", asking.lease_token, "b", "MIT or \x1b[2JApache?")

    anyio.run(partial(_with_orchestrator, state_root, setup))
    assert ok(state_root, "tell", "--task", "T", "use v2", "--by", "ada") == (
        "told task T (its holder a, and every later holder)\n"
    )
    both = wvo(state_root, "tell", "--task", "T", "--all", "hi")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert "paused: not claimable until resumed; told 1 holder(s)" in ok(
        state_root, "pause", "--epic", "E", "--reason", "review"
    )
    assert "paused by a person, left out: epic E (`wvo-mcp resume`)" in ok(state_root, "status")
    assert "epic E resumed (paused by person:" in ok(state_root, "resume", "--epic", "E")
    assert "paused by a person" not in ok(state_root, "status")
    gone = wvo(state_root, "resume", "--epic", "E")
    assert gone.returncode == 2 and "epic E is not paused (nothing is paused)" in gone.stderr
    assert "its holder is told" in ok(state_root, "redirect", "T", "--description", "REST")
    inbox = ok(state_root, "inbox")
    assert "MIT or  [2JApache?" in inbox and "\x1b" not in inbox
    [asked] = json.loads(ok(state_root, "inbox", "--json"))["questions"]
    assert (asked["task_id"], asked["asked_by"]) == ("Q", "b")
    assert "claimable again" in ok(state_root, "answer", "Q", "Apache-2.0", "--by", "ada")
    assert json.loads(ok(state_root, "inbox", "--json"))["questions"] == []
    shown = json.loads(ok(state_root, "show", "Q"))
    assert [(n["kind"], n["author"]) for n in shown["notes"]] == [
        ("question", "b"),
        ("answer", "person:ada"),
    ]
    assert json.loads(ok(state_root, "show", "T"))["description"] == "REST"
