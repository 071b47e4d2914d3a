"""The leases area: a holder's heartbeat, checkpoint and moves (services/leases, moves).

Held work is timed for claim admission (claim_admission.held): it goes before claims and sets
how fast new holders are let in. `update_and_claim` is a move with the next claim, in
the claims' turn."""

import time
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any

import anyio

from wvo_mcp.git import snapshots
from wvo_mcp.models import CheckpointResult, LeaseResult, UpdateResult
from wvo_mcp.orchestrator import arrival, claim_admission
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.orchestrator.claims import next_claim
from wvo_mcp.rules.claim_admission import HELD_WAIT_S
from wvo_mcp.rules.transitions import Status, check_claim_next
from wvo_mcp.services import claims, leases, moves, notes
from wvo_mcp.store import Lock, Tx


class LeasesFacade(Facade):
    async def heartbeat(
        self, task_id: str, token: str, agent_id: str, lease_seconds: int | None = None
    ) -> LeaseResult:
        """A holder's renewal in one statement on PostgreSQL (one round trip, in
        autocommit: leases.renew_alone); a token that did not hold the task is told why by
        `leases.heartbeat`."""
        given: dict[str, Any] = {
            "task_id": task_id, "token": token, "agent_id": agent_id,
            "lease_seconds": lease_seconds, "now": self.clock(),
        }  # fmt: skip
        renew = partial(leases.renew, **given)
        alone = leases.renew_alone(**given)
        arrived = arrival.arrived()
        left = arrival.left(HELD_WAIT_S, arrived)
        renewing = self.db.write_then_read(renew, Lock.TASK, left, alone)
        renewed = await claim_admission.held(self.claims, renewing)
        if renewed is not None:
            return renewed
        # Not held: the heartbeat's own write says why, within what is left of the bound.
        left = arrival.left(HELD_WAIT_S, arrived)
        return await self.db.write(partial(leases.heartbeat, **given), Lock.TASK, left)

    async def checkpoint(
        self,
        task_id: str,
        token: str,
        agent_id: str,
        summary: str,
        next_steps: str | None = None,
        progress: int | None = None,
        files: Sequence[str] = (),
        git_snapshot: bool = False,
        attach_sandbox_run: bool = False,
    ) -> CheckpointResult:
        # The snapshot is taken before the transaction (git can take seconds; the write lock
        # must not wait on it); the ref is set after commit, once the sequence is known.
        snap = None
        since = None  # the bound counts from the call's arrival, or from the snapshot taken
        if git_snapshot and self.git is not None:
            snap = await anyio.to_thread.run_sync(
                snapshots.snapshot, self.git, f"wvo-mcp checkpoint of {task_id}: {summary[:200]}"
            )
            since = time.monotonic()
        given: dict[str, Any] = {
            "task_id": task_id, "token": token, "agent_id": agent_id, "summary": summary,
            "next_steps": next_steps, "progress": progress, "files": files, "now": self.clock(),
        }  # fmt: skip
        plain = snap is None and not attach_sandbox_run
        full = notes.asking_after(
            partial(
                leases.checkpoint, **given, snapshot=snap, attach_sandbox_run=attach_sandbox_run
            ),
            agent_id,
        )
        # A plain one, on a store that has it, as one statement (leases.checkpoint_alone);
        # a token that did not hold the task is then told why by the checkpoint's own write.
        alone = leases.checkpoint_alone(**given) if plain else None
        write = self.db.write_then_read(full, Lock.TASK, arrival.left(HELD_WAIT_S, since), alone)
        added = await claim_admission.held(self.claims, write)
        if added is None:
            told = self.db.write_then_read(full, Lock.TASK, arrival.left(HELD_WAIT_S, since))
            result = await claim_admission.held(self.claims, told)
        else:
            result = added
        if self.git is not None and snap is not None and result.git_ref is not None:
            await anyio.to_thread.run_sync(self.git.set_ref, result.git_ref, snap.commit)
        elif git_snapshot:
            result.git_note = (
                f"{self.settings.workspace_root.resolve()} is not a git repository (as found "
                "when the server started): no snapshot taken"
            )
        return result

    async def update_status(
        self,
        task_id: str,
        status: Status,
        actor: str,
        token: str | None = None,
        reason: str | None = None,
        *,
        by_person: bool = False,
        skip_verify: bool = False,
        landing: str | None = None,
        verified: leases.Run | None = None,
    ) -> UpdateResult:
        """Move a task; `done` first runs the task's verify_command in the sandbox (outside
        any transaction: it can take minutes) unless a person skips it. `landing`: the
        autopilot lands this commit (it moves as the lander), `verified`: having run the
        verification on a clean checkout of exactly what lands (Verification.verify)."""
        # A holder's own move changes its task and what depends on it, rows it locks; a
        # person's or the lander's may read and move anything (approvals, reviews).
        holder = token is not None and not by_person and landing is None
        lock = Lock.TASK if holder else Lock.WORLD

        def move(
            verified: leases.Run | None, skipped_by: str | None, since: float | None = None
        ) -> Awaitable[UpdateResult]:
            write = partial(
                moves.update_status, settings=self.settings, task_id=task_id, target=status,
                actor=actor, token=token, reason=reason, now=self.clock(), by_person=by_person,
                landing=landing, verified=verified, skipped_by=skipped_by,
            )  # fmt: skip
            if not holder:
                return self.db.write(write, lock)
            asked = notes.asking(write, actor)
            within = arrival.left(HELD_WAIT_S, since)
            return claim_admission.held(
                self.claims, self.db.write_then_read(asked, lock, within), frees=True
            )

        try:  # one transaction, unless the task has a verify_command to pass first
            return await move(verified, None)
        except moves.Unverified as needed:
            command = needed.command
        if skip_verify:
            return await move(None, actor)
        if token is not None:
            checked = await self.verification.verify_holding(task_id, token, actor, command)
        else:
            checked = await self.verification.verify(task_id, command)
        return await move(checked, None, time.monotonic())  # a new bound after the check

    async def update_and_claim(
        self, task_id: str, status: Status, agent_id: str, token: str | None, reason: str | None
    ) -> UpdateResult:
        """plan_update with claim_next: the move, then the agent's next claim (as claim_task
        with no arguments) in `next`, one transaction. Two decisions: a refused move claims
        nothing, and a claim that fails after the move is undone alone, the move standing.
        A task with a verify_command is checked first, outside any transaction, so it moves
        and claims in two."""
        check_claim_next(status)
        move = partial(
            moves.update_status, settings=self.settings, task_id=task_id, target=status,
            actor=agent_id, token=token, reason=reason, now=self.clock(),
        )  # fmt: skip
        claim = next_claim(self, agent_id, status)

        def both(tx: Tx) -> UpdateResult:
            moved = move(tx)
            moved.next = claim(tx)
            return moved

        # The move's own lock, with the claims' turn: a WORLD write keeps out claims too.
        back: float | None = None
        try:
            if token is None:
                return await self.db.write(both, Lock.WORLD)
            done = await claim_admission.in_turn(
                self.db, self.claims, both, agent_id, arrival.arrived()
            )
            if not isinstance(done, float):
                if done.status != Status.IN_PROGRESS:
                    self.claims.freed()  # ... and taken by its claim_next, if granted
                return done
            back = done  # past capacity: the move alone, held work's turn, and no claim
        except moves.Unverified:
            pass  # rolled back whole: the command runs outside any transaction
        moved = await self.update_status(task_id, status, agent_id, token, reason)
        if back is not None:
            moved.next = claims.busy(agent_id, back)
            return moved
        # As of now: the check may have taken minutes.
        again = next_claim(self, agent_id, status)
        taken = await claim_admission.in_turn(self.db, self.claims, again, agent_id)
        if isinstance(taken, float):
            moved.next = claims.busy(agent_id, taken)
        else:  # asked after the move's: what the task now held has for the agent
            moved.next, moved._no_notes_for = taken, taken._no_notes_for
        return moved

    async def release_orphans(self, agents: Sequence[str], reason: str) -> list[str]:
        """Tasks held by the workers of an autopilot that died go back to pending with
        their checkpoints, no attempt counted (each holder's own move, made for it)."""
        return await self.db.write(
            partial(
                moves.release_orphans,
                settings=self.settings,
                agents=agents,
                reason=reason,
                now=self.clock(),
            )
        )
