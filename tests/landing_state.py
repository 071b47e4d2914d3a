"""A merge queue as a night of work leaves it, written through the services the autopilot
uses (take, start, intend, complete, send_back), for the tests of what people and agents
read of it: the landing_queue tool, `autopilot status`, the dashboard's Landing section.

Onto `main`, its clock moved from `start` (seconds after it):
- L was queued at 0 and landed at 600: one landed change, which waited 600 s. Its usage:
  1000 + 200 tokens on codex/medium while its worker held it, 300 + 30 and 200 + 20 on
  claude/sonnet charged after it submitted (the autopilot's charge_task).
- B was queued at 0 and returned to a worker at 240 (usage 900 + 99 on codex/medium, which
  no landed change carries); queued again at 660, with 1 return.
- H was queued at 700 and held for a person at 700.
- Q (its title `title`, hostile where a test asks) was queued at 720, behind B.
- R waits for its review since 780.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services import landing_queue
from wvo_mcp.services.landing_queue import Return

TARGET = "main"
RUN = "autopilot-test"
BASE = "0" * 40
HELD_WHY = "its conflict is with a person's commit"
CODEX = ("codex", "gpt-5-codex")  # tier medium
CLAUDE = ("claude", "claude-sonnet-4-5")  # tier sonnet


def sha(n: int) -> str:
    return f"{n:040x}"


@dataclass(frozen=True)
class Filled:
    entries: dict[str, int]  # task id -> its open (or last) entry's id
    landing_id: int
    start: datetime


async def fill(
    orch: Orchestrator, move_to: Callable[[float], datetime], title: str = "queued next"
) -> Filled:
    """The queue above; `move_to(s)` sets the orchestrator's clock to `s` seconds after the
    start and answers that moment."""
    await orch.create_tasks(
        [
            TaskSpec(id="L", title="lands"),
            TaskSpec(id="B", title="comes back once"),
            TaskSpec(id="H", title="held for a person"),
            TaskSpec(id="Q", title=title),
            TaskSpec(id="R", title="waits for its review", metadata={"review": True}),
        ],
        "planner",
    )
    start = move_to(0)
    await _submitted(orch, "L", "wL", sha(1), usage=(CODEX, 1000, 200))
    await orch.charge_task("L", *CLAUDE, 300, 30)
    await orch.charge_task("L", *CLAUDE, 200, 20)
    await _submitted(orch, "B", "wB", sha(2), usage=(CODEX, 900, 99))
    fence = await _hold(orch, move_to(0))
    entries: dict[str, int] = {}
    b = await _entry(orch, "B")
    await orch.db.write(partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[b]))
    move_to(240)
    await _back(orch, fence, b, None)
    now = move_to(600)
    lands = await _entry(orch, "L")
    await orch.db.write(
        partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[lands])
    )
    landing_id = await orch.db.write(
        partial(
            landing_queue.intend, target=TARGET, run=RUN, fence=fence, old=sha(100), new=sha(101),
            tree=sha(102), checks="make test: exit 0", ids=[lands], now=now,
        )
    )  # fmt: skip
    done = await orch.db.write(
        partial(landing_queue.complete, settings=orch.settings, landing_id=landing_id, now=now)
    )
    assert done == ["L"], done
    entries["L"] = lands
    move_to(660)
    await _submitted(orch, "B", "wB2", sha(3))
    entries["B"] = await _entry(orch, "B")
    move_to(700)
    await _submitted(orch, "H", "wH", sha(4))
    entries["H"] = await _entry(orch, "H")
    await orch.db.write(
        partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[entries["H"]])
    )
    await _back(orch, fence, entries["H"], HELD_WHY)
    move_to(720)
    await _submitted(orch, "Q", "wQ", sha(5))
    entries["Q"] = await _entry(orch, "Q")
    move_to(780)
    await _submitted(orch, "R", "wR", sha(6), gate=Gate.REVIEW)
    entries["R"] = await _entry(orch, "R")
    return Filled(entries, landing_id, start)


async def _submitted(
    orch: Orchestrator,
    task_id: str,
    agent: str,
    commit: str,
    usage: tuple[tuple[str, str], int, int] | None = None,
    gate: Gate = Gate.LAND,
) -> None:
    """Claimed for `agent` under the autopilot's gate, its usage reported while it holds
    it, submitted, and taken into the queue."""
    claim = await orch.claim(agent, task_id, gate=gate)
    assert claim.claimed and claim.lease_token is not None, claim
    if usage is not None:
        (provider, model), tokens_in, tokens_out = usage
        await orch.record_usage(
            provider, model, tokens_in, tokens_out, "success", task_id, claim.lease_token, agent
        )
    moved = await orch.update_status(task_id, Status.NEEDS_REVIEW, agent, claim.lease_token)
    assert moved.status == Status.NEEDS_REVIEW, moved
    await orch.take_submission(task_id, commit, BASE, TARGET)


async def _entry(orch: Orchestrator, task_id: str) -> int:
    found = await orch.db.read(partial(landing_queue.open_entry, task_id=task_id))
    assert found is not None, task_id
    return found.id


async def _hold(orch: Orchestrator, now: datetime) -> int:
    fence = await orch.db.write(
        partial(
            landing_queue.hold_target,
            target=TARGET,
            run=RUN,
            until=now + timedelta(days=1),
            now=now,
        )
    )
    assert fence is not None
    return fence


async def _back(orch: Orchestrator, fence: int, entry_id: int, hold: str | None) -> None:
    back = Return("returned: the check failed stacked onto the target", "the tail")
    outcome = await orch.db.write(
        partial(
            landing_queue.send_back, settings=orch.settings, target=TARGET, run=RUN, fence=fence,
            entry_id=entry_id, back=back, hold=hold, now=orch.clock(),
        )
    )  # fmt: skip
    assert outcome == ("held" if hold else "returned"), outcome


async def fill_state(state_root: Path, title: str = "queued next", ago: float = 3600) -> Filled:
    """The queue above in a state folder's database, started `ago` seconds before now (what
    a server started on the folder then reads)."""
    start = timeutil.now() - timedelta(seconds=ago)
    moment = [start]

    def move_to(seconds: float) -> datetime:
        moment[0] = start + timedelta(seconds=seconds)
        return moment[0]

    settings = Settings.from_env({"WVO_STATE_ROOT": str(state_root), "WVO_OTEL_ENABLED": "0"})
    orch = await Orchestrator.open(settings, clock=lambda: moment[0])
    try:
        return await fill(orch, move_to, title)
    finally:
        await orch.close()
