"""Many servers on one database, in-process: 16 orchestrators (each its own connection or
pool) claim, release, fail and complete 200 tasks at once. The audit trail is replayed to
prove every task was done exactly once, never held twice, within every WIP limit, with
lease epochs counting up by one per grant."""

from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from tests.contract.conftest import World, all_events, create
from wvo_mcp.errors import LeaseLost, Overloaded
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio

SERVERS = 16
TASKS = 200
# Low enough to be reached on both backends: on PostgreSQL a holder's moves do not wait
# behind the claims queued on the claim lock, so 16 agents seldom hold 8 tasks at once.
WIP_GLOBAL = 4
WIP_EPIC = 2
EPICS = 4
DEADLINE_S = 90


T = TypeVar("T")


def task_id(n: int) -> str:
    return f"T{n:03d}"


async def again(call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """`call`, made again while it is refused Overloaded (nothing of it done, as its answer
    says), as an agent makes it again: on a busy machine 16 stores on one SQLite file can
    keep a write from its turn past its bound."""
    while True:
        try:
            return await call(*args, **kwargs)
        except Overloaded:
            await anyio.sleep(0.01)


def grants_expected(n: int) -> int:
    """Every 7th task is released once, every 11th fails once, then each is done."""
    return 1 + (n % 7 == 0) + (n % 11 == 0)


async def test_many_servers_do_every_task_exactly_once(world: World) -> None:
    limits = {"wip_global": WIP_GLOBAL, "wip_per_agent": 1, "wip_per_epic": WIP_EPIC}
    # Half the servers run their transactions on the event loop (a SQLite transaction then
    # never yields: the workers interleave between transactions), half in worker threads
    # (transactions overlap for real and meet SQLite's busy lock).
    servers = [
        await world.open(threaded=n % 2 == 1, retry_base_seconds=0, **limits)
        for n in range(SERVERS)
    ]
    ids = [task_id(n) for n in range(TASKS)]
    await create(
        servers[0],
        *(
            {
                "id": task_id(n),
                "title": f"task {n}",
                "epic_id": f"E{n % EPICS}",
                "business_value": 1 + n % 20,
                # The last quarter waits on the first: done must release them under load.
                "depends_on": [task_id(n - 150)] if n >= 150 else [],
            }
            for n in range(TASKS)
        ),
    )
    done: list[str] = []
    released: set[str] = set()
    refusals: Counter[str] = Counter()
    seen_wip: list[int] = []

    async def work(n: int, orch: Orchestrator) -> None:
        agent = f"agent-{n:02d}"
        while len(done) < TASKS:
            claim = await again(orch.claim, agent)
            if not claim.claimed:
                refusals[str(claim.reason)] += 1
                await anyio.sleep(0.002)
                continue
            await anyio.lowlevel.checkpoint()  # let the other servers in between every step
            assert claim.task is not None and claim.lease_token is not None
            task, token = claim.task.id, claim.lease_token
            counts = (await again(orch.plan_next, agent, limit=1)).counts
            seen_wip.append(counts.wip_global_used)
            assert counts.wip_agent_used == 1
            await again(orch.checkpoint, task, token, agent, summary=f"{agent} on {task}")
            await anyio.lowlevel.checkpoint()
            number = int(task[1:])
            if number % 7 == 0 and task not in released:
                released.add(task)
                await again(orch.update_status, task, Status.PENDING, agent, token=token)
                with pytest.raises(LeaseLost):
                    await again(orch.heartbeat, task, token, agent)
            elif number % 11 == 0 and claim.attempt == 1:
                failed = await again(orch.update_status, task, Status.FAILED, agent, token=token)
                assert (failed.status, failed.attempts) == (Status.PENDING, 1)
            else:
                await again(orch.update_status, task, Status.DONE, agent, token=token)
                done.append(task)

    failures: list[BaseException] = []

    async def guarded(n: int, orch: Orchestrator, group: anyio.abc.TaskGroup) -> None:
        """The first failure stops every worker and is raised alone, not in a group."""
        try:
            await work(n, orch)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # pytest's Failed is not an Exception
            failures.append(exc)
            group.cancel_scope.cancel()

    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as group:
            for n, orch in enumerate(servers):
                group.start_soon(guarded, n, orch, group)
    if failures:
        raise failures[0]

    assert sorted(done) == ids  # each done once, by our own count
    assert max(seen_wip) <= WIP_GLOBAL
    assert refusals["global_wip_limit"] > 0, refusals  # the limit was under pressure
    reader = servers[-1]
    completions = await reader.completions()
    assert sorted(completions) == ids
    assert all(len(actors) == 1 for actors in completions.values()), completions
    page = await reader.list_tasks(status="done", limit=500)
    assert len(page.tasks) == TASKS
    plan = await reader.plan_next("nobody")
    assert plan.counts.by_status == {"done": TASKS} and plan.counts.wip_global_used == 0

    # Replay the audit trail in commit order.
    holder: dict[str, tuple[str, int | None]] = {}
    epoch: dict[str, int] = defaultdict(int)
    by_agent: Counter[str] = Counter()
    by_epic: Counter[str] = Counter()
    grants: Counter[str] = Counter()
    finished: dict[str, str] = {}
    busiest = 0
    for event_id, task, e in await all_events(reader, ids):
        epic = f"E{int(task[1:]) % EPICS}"
        if e.kind == "claimed":
            assert task not in holder, f"{task} granted to {e.actor} while {holder.get(task)}"
            assert e.lease_epoch == epoch[task] + 1, (task, e.lease_epoch, epoch[task])
            epoch[task] = e.lease_epoch
            holder[task] = (e.actor, e.lease_epoch)
            by_agent[e.actor] += 1
            by_epic[epic] += 1
            grants[task] += 1
            assert len(holder) <= WIP_GLOBAL, event_id
            busiest = max(busiest, len(holder))
            assert by_agent[e.actor] <= 1, (event_id, e.actor)
            assert by_epic[epic] <= WIP_EPIC, (event_id, dict(by_epic))
        elif e.from_status == "in_progress":
            assert e.kind == "status", (task, e)
            assert holder.pop(task) == (e.actor, e.lease_epoch), (task, e)
            by_agent[e.actor] -= 1
            by_epic[epic] -= 1
            if e.to_status == "done":
                assert task not in finished, task
                finished[task] = e.actor
        else:
            assert e.kind == "created", (task, e)  # no expiry: the clock stood still
    assert holder == {}
    assert busiest == WIP_GLOBAL  # the limit was reached, never passed
    workers = Counter(finished.values())
    assert len(workers) >= SERVERS // 4, workers  # the servers took turns
    assert finished == {t: actors[0] for t, actors in completions.items()}
    assert dict(grants) == {task_id(n): grants_expected(n) for n in range(TASKS)}
