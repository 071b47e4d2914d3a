"""An autopilot run's options, worker slots and running totals, shared by its parts.

What an autopilot run is told (Options), its worker slots, its running totals, and the
names and figures its parts share."""

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wvo_mcp import providers
from wvo_mcp.autopilot.landing import steps
from wvo_mcp.errors import ValidationFailed

ACTOR = "autopilot"
LIVE_SECONDS = 30  # an autopilot seen this recently is running
CLAIM_SECONDS = 2 * LIVE_SECONDS  # what an autopilot reviews stays its own this long, renewed
TAIL_LINES = 20  # of a running worker's output, in each round's report
DRAINED = "stopped: the autopilot drained"
PAUSED = "stopped: a person paused its task"


@dataclass(frozen=True)
class Options:
    workers: Mapping[str, int] | None = None  # provider -> slots; None: each kind's max_workers
    epic: str | None = None
    until_empty: bool = False
    max_cost: float | None = None
    worktrees: Path | None = None  # None: <workspace>.wvo-worktrees beside the workspace
    poll_seconds: float = 1.0
    drain_seconds: float = 30.0
    merge: steps.Stacking = "leave"  # how finished work lands: see landing/steps.py
    onto: str | None = None  # the target branch merge and rebase land on (main, origin/main)
    push: str | None = None  # --merge leave: the remote each verified task's branch goes to
    via: str = "push"  # how --onto a remote's branch lands: push, or pull-request
    forge_api: str | None = None  # the forge's API base URL (None: from the remote's URL)
    forge_poll: float = 10.0  # seconds between two looks at one pull request
    forge_safety_poll: float = 600.0  # the same, where webhook deliveries say when to look
    forge_batch: int = 1  # tasks one pull request carries at most
    check: str | None = None  # a project-wide check every landing tree passes
    batch: int = 4  # queue entries tested as one
    test_slots: int = 2  # landing checks run at once
    max_returns: int = 3  # a submission returned this often goes to a person
    avoid_conflicts: bool = True  # launch work apart from what runs or waits to land first
    review_epics: frozenset[str] = frozenset()  # besides tasks whose metadata.review is true
    goal: str | None = None  # a planner worker turns it into tasks before the work starts
    plan_only: bool = False  # stop once the planner is done (wvo-mcp init --goal)
    unsandboxed: bool = False  # --unsandboxed-workers: run the CLIs as the person, unisolated
    preflight: bool = True  # the check runs once on the target before anything launches


@dataclass
class Slot:
    provider: str
    index: int
    kind: providers.WorkerKind
    busy: bool = False
    task_id: str = ""  # while busy
    since: str = ""
    suffix: str = ""  # set when another autopilot runs on the database: ids stay apart
    pgid: int = 0  # the running CLI's process group, and when its leader started: a later
    started: int | None = None  # autopilot ends them if this one dies (orphans.py)
    # The running CLI's last output lines, shortened: the dashboard's live log of the task.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def agent_id(self) -> str:
        return f"{self.provider}-{self.index}{self.suffix}"


@dataclass
class Summary:
    launched: int = 0
    done: int = 0
    released: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stopped_providers: dict[str, str] = field(default_factory=dict)


def make(known: providers.Providers, wanted: Mapping[str, int] | None) -> list[Slot]:
    """The run's slots: `wanted` per provider (--workers), else each worker kind's
    max_workers."""
    kinds = known.workers
    if wanted is not None:
        unknown = sorted(set(wanted) - set(kinds))
        if unknown:
            raise ValidationFailed(
                f"no worker kind for provider(s) {', '.join(unknown)} in the providers file "
                f"({known.source}); providers with one: "
                f"{', '.join(kinds) or 'none (add a worker: block to a provider)'}"
            )
    counts = wanted if wanted is not None else {p: k.max_workers for p, k in kinds.items()}
    slots = [
        Slot(provider, i, kinds[provider])
        for provider, n in counts.items()
        for i in range(1, n + 1)
    ]
    if not slots:
        raise ValidationFailed(
            "no workers to run: add a `worker:` block (kind claude, codex or command) to a "
            "provider in the providers file, or name some with --workers PROVIDER:N"
        )
    return slots
