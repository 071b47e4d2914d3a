"""What each kind of run gets: a worker its task, a reviewer a commit, a planner a goal.

What each kind of run is given: a worker its task (a repository of its own, its prompt,
a run token scoped to the task), a reviewer a submitted commit (a read-only checkout and its
diff), a planner the goal. Each runs one CLI through the executor.

Carries out `rules/run_charges.py`."""

import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from wvo_mcp import guidance, scratch_dirs
from wvo_mcp.autopilot import prompt, settle, worker_output
from wvo_mcp.autopilot.landing import lander
from wvo_mcp.autopilot.repos import Repos
from wvo_mcp.autopilot.run_logs import next_run
from wvo_mcp.autopilot.slots import ACTOR, Slot
from wvo_mcp.autopilot.worker_process import Executor
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, WvoError
from wvo_mcp.git import branch_name, trees
from wvo_mcp.models import ClaimResult, TaskDetail
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import routing, run_charges
from wvo_mcp.services import landing_queue
from wvo_mcp.services.bearer_tokens import Scope

REVIEW_DIFF_CHARS = 40_000


class Roles:
    def __init__(
        self,
        orchestrator: Orchestrator,
        settings: Settings,
        repos: Repos,
        executor: Executor,
        lander: lander.Lander,
        say: Callable[[str], None],
    ) -> None:
        self.orchestrator = orchestrator
        self.settings = settings
        self.repos = repos
        self.git = repos.git
        self.executor = executor
        self.lander = lander
        self.say = say
        self.instructions = ""  # the project's CLAUDE.md / AGENTS.md at the base commit

    def _strongest(self, slot: Slot) -> str:
        provider = self.orchestrator.providers.get(slot.provider)
        return provider.tiers[-1].model if provider is not None else ""

    async def work(
        self, slot: Slot, claim: ClaimResult, model: str, base: str, directive: str
    ) -> tuple[worker_output.Finish, Path, str]:
        """One worker run on a repository of its own: (how it ended, that repository, the
        commit it started from)."""
        assert claim.task is not None and claim.lease_token is not None
        task_id, attempt = claim.task.id, claim.attempt or 1
        detail = await self.orchestrator.get_task(task_id)
        branch = branch_name(task_id)
        await self.repos.bring(task_id)
        start = await self.repos.start_commit(branch, base)
        run_dir = self.repos.run_dir(task_id)
        run = next_run(run_dir, self.repos.task_dir(task_id))
        repo = self.repos.task_dir(task_id) / run
        onto = self.lander.onto
        also = {onto: await self.lander.tip()} if onto else {}
        await self.repos.in_repo(
            partial(trees.clone_for_worker, made=True), self.git, repo, start, branch,
            slot.agent_id, "wvo-mcp-worker@localhost", also,
        )  # fmt: skip
        text = prompt.worker_prompt(
            directive=directive,
            task=detail,
            agent_id=slot.agent_id,
            lease_token=claim.lease_token,
            attempt=attempt,
            branch=branch,
            # The merge queue's return says what to resolve: given whole, not cut for a claim.
            checkpoint=detail.latest_checkpoint
            if detail.latest_checkpoint and detail.latest_checkpoint.agent_id == ACTOR
            else claim.last_checkpoint,
            review_notes=_review_notes(detail),
            returned=_returned(detail),
            instructions=self.instructions,
            # What a person left for this task's holders, given now (not again on its first call).
            notes=await self.orchestrator.notes_for(slot.agent_id),
        )
        self.say(f"{slot.agent_id} starts {task_id} (attempt {attempt}, {model}) in {repo}")
        finish = await self.executor.run(
            slot,
            task_id,
            model,
            text,
            repo,
            run_dir / f"{run}.log",
            Scope(task_id, "worker", provider=slot.provider, model=model),
            borrowed=(self.repos.objects(),),
        )
        return finish, repo, start

    async def plan(self, slot: Slot, goal: str, base: str) -> None:
        """A planner worker (the first slot, its provider's strongest model, a planner's
        token) turns the goal into tasks with task_create, in a repository of its own."""
        model = self._strongest(slot)
        sources = guidance.Sources(self.settings.state_root, self.git, base)
        directive = await anyio.to_thread.run_sync(guidance.text, sources, "planning")
        # Names no task can have: task branches are wvo/<task>.
        run_dir = self.repos.runs / "wvo-planner"
        run_dir.mkdir(parents=True, exist_ok=True)
        run = next_run(run_dir, self.repos.worktrees / "wvo-planner")
        repo = self.repos.worktrees / "wvo-planner" / run
        await self.repos.in_repo(
            partial(trees.clone_for_worker, made=True), self.git, repo, base, "wvo-planner",
            slot.agent_id,
        )  # fmt: skip
        self.say(f"{slot.agent_id} plans: {goal}")
        text = f"{directive.strip()}\n\n{self.instructions}\n\n# Goal\n\n{goal}\n"
        finish = await self.executor.run(
            slot,
            "",
            model,
            text,
            repo,
            run_dir / f"{run}.log",
            Scope("", "planner"),
            borrowed=(self.repos.objects(),),
        )
        await record(self.orchestrator, slot, model, finish, None, None)
        self.say(f"{slot.agent_id} planned ({finish.outcome}): {finish.message[:300]}")

    async def review(self, slot: Slot, item: landing_queue.Entry, base: str) -> None:
        """Another worker, in a sandbox of its own, reads exactly the submitted commit (a
        fresh read-only checkout, and its diff) and gives its verdict with review_submit
        under its own run token. Approved work joins the queue; requested changes send the
        task back with the notes for the next attempt."""
        task_id, commit = item.task_id, item.commit
        try:
            detail = await self.orchestrator.get_task(task_id)
            branch = branch_name(task_id)
            diff = await self.repos.in_repo(self.git.diff, base, commit)
            if len(diff) > REVIEW_DIFF_CHARS:
                diff = diff[:REVIEW_DIFF_CHARS] + "\n[... cut: read the rest in the checkout]"
            model = self._strongest(slot)
            text = prompt.review_prompt(
                task=detail, author=item.author, branch=branch, commit=commit, diff=diff
            )
            self.say(f"{slot.agent_id} reviews {task_id} ({item.author}'s work)")
            with scratch_dirs.temporary("review", self.settings.state_root) as scratch:
                checkout = Path(scratch) / "checkout"
                checkout.mkdir()
                await self.repos.in_repo(trees.materialize, self.git, commit, checkout)
                finish = await self.executor.run(
                    slot,
                    task_id,
                    model,
                    text,
                    checkout,
                    self.repos.run_dir(task_id) / "review.log",
                    Scope(task_id, "reviewer", commit),
                    writable=False,
                )
            await self._reviewed(slot, item, model, finish)
        except WvoError as exc:
            self.say(f"{slot.agent_id} could not review {task_id}: {exc}")

    async def _reviewed(
        self, slot: Slot, item: landing_queue.Entry, model: str, finish: worker_output.Finish
    ) -> None:
        task_id = item.task_id
        await record(self.orchestrator, slot, model, finish, None, None)
        usage = finish.usage
        await self.orchestrator.charge_task(
            task_id, slot.provider, model, usage.input_tokens, usage.output_tokens
        )
        await charged(self.orchestrator, slot, model, finish, task_id, "reviewer")
        verdict = await self.orchestrator.reviewed(item.id)
        self.say(
            {
                "queued": f"{slot.agent_id} approved {task_id}: it joins the queue",
                "changes": f"{slot.agent_id} asked for changes to {task_id}",
                "review": f"{slot.agent_id} gave no verdict on {task_id} "
                f"({finish.limit or finish.outcome})",
            }.get(verdict, f"{task_id} no longer waits for review")
        )


async def record(
    orchestrator: Orchestrator,
    slot: Slot,
    model: str,
    finish: worker_output.Finish,
    task_id: str | None,
    token: str | None,
) -> None:
    """The run's usage and outcome against its provider (and its task, while held)."""
    if settle.recorded(finish):
        usage = finish.usage
        await orchestrator.record_run(
            slot.provider,
            model,
            usage.input_tokens,
            usage.output_tokens,
            settle.judged(finish),
            task_id,
            token,
            slot.agent_id,
        )


async def charged(
    orchestrator: Orchestrator, slot: Slot, model: str, finish: worker_output.Finish, task_id: str,
    role: str,
) -> None:  # fmt: skip
    """What the run was charged, on its task's trail (rules/run_charges.py): per run, beside
    the meter's count and its CLI's word, for `wvo-mcp show` and the dashboard. Recorded by
    the autopilot, which charged it: the run's agent is named in it."""
    _, tier = orchestrator.providers.resolve(slot.provider, model)
    usage, metered, said = finish.usage, finish.metered, finish.said
    charge = run_charges.RunCharge(
        role=role, agent=slot.agent_id, provider=slot.provider, tier=tier.name, model=model,
        outcome=finish.outcome,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cost_usd=routing.Estimate(usage.input_tokens, usage.output_tokens).cost(tier),
        meter=None if metered is None else run_charges.Tokens(
            metered.input_tokens, metered.output_tokens),
        said=None if said is None else run_charges.Tokens(
            said.input_tokens, said.output_tokens, said.cost_usd),
    )  # fmt: skip
    with contextlib.suppress(NotFound):  # removed meanwhile: its trail went with it
        await orchestrator.note(task_id, ACTOR, run_charges.KIND, run_charges.reason(charge))


def _review_notes(task: TaskDetail) -> str | None:
    """What the latest review asked for, when it asked for changes."""
    reviews = [e for e in task.recent_events if e.kind == "review" and e.reason]
    latest = reviews[-1].reason if reviews else None
    return latest.removeprefix("changes: ") if latest and latest.startswith("changes: ") else None


def _returned(task: TaskDetail) -> str | None:
    """Why the last submission did not land (a failed verification, a submission that could
    not be taken), when that is the latest thing that happened to it."""
    kinds = [e for e in task.recent_events if e.kind in ("returned", "submitted")]
    return kinds[-1].reason if kinds and kinds[-1].kind == "returned" else None
