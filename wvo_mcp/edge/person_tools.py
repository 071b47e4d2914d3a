"""Tools served only over HTTP: a person's moves, a reviewer's verdict, the tokens view.

The tools only served over HTTP: a person's moves (the CLI's approve, reject, requeue,
cancel, done) for person tokens, a reviewer's verdict for the run token of one review, and the
operator's view of the tokens (toolset.role_allows, scope_allows)."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import StringConstraints

from wvo_mcp.edge import access
from wvo_mcp.edge.calls import READ_ONLY, WRITES, Server, Traced, orchestrator_of
from wvo_mcp.models import (
    Inbox,
    Name,
    PauseResult,
    TaskId,
    TokenInfo,
    TokenList,
    Told,
    UpdateResult,
    VerifyCommand,
)
from wvo_mcp.rules.pauses import scope_of
from wvo_mcp.rules.transitions import Status

Note = Annotated[str, StringConstraints(max_length=4000)]


def register(server: Server, traced: Traced) -> None:
    """Every HTTP-only tool, in the order tools/list shows them."""
    register_person_moves(server, traced)
    register_person_hand(server, traced)
    register_review(server, traced)
    register_token_views(server, traced)


def register_person_moves(server: Server, traced: Traced) -> None:
    """A person's moves on a task, each named for the person's token."""

    @server.tool(title="Approve a task", annotations=WRITES)
    @traced
    async def task_approve(task_id: TaskId, ctx: Context, note: Note | None = None) -> UpdateResult:
        """Person only: approve a task waiting in awaiting_approval."""
        return await orchestrator_of(ctx).approve(task_id, access.person(), note)

    @server.tool(title="Reject a task", annotations=WRITES)
    @traced
    async def task_reject(
        task_id: TaskId,
        note: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
        to: Literal["cancelled", "blocked", "pending", "in_progress"] = "cancelled",
    ) -> UpdateResult:
        """Person only: reject a task waiting in awaiting_approval (note says why): cancel
        it, block it, re-queue it, or hand it back to its holder (in_progress)."""
        return await orchestrator_of(ctx).reject(task_id, access.person(), note, Status(to))

    @server.tool(title="Requeue a task", annotations=WRITES)
    @traced
    async def task_requeue(
        task_id: TaskId, ctx: Context, reason: Note | None = None
    ) -> UpdateResult:
        """Person only: put a task back in the queue (a dead letter, a blocked or cancelled
        task, or a stuck in-progress one, whose holder then gets "lease lost")."""
        return await orchestrator_of(ctx).requeue(task_id, access.person(), reason)

    @server.tool(title="Cancel a task", annotations=WRITES)
    @traced
    async def task_cancel(
        task_id: TaskId, ctx: Context, reason: Note | None = None
    ) -> UpdateResult:
        """Person only: cancel a task (a holder's lease ends; task_requeue brings it back)."""
        return await orchestrator_of(ctx).update_status(
            task_id, Status.CANCELLED, access.person(),
            reason=reason or "cancelled by a person", by_person=True,
        )  # fmt: skip

    @server.tool(title="Mark a task done", annotations=WRITES)
    @traced
    async def task_done(
        task_id: TaskId, ctx: Context, reason: Note | None = None, skip_verify: bool = False
    ) -> UpdateResult:
        """Person only: mark a task done (its holder's lease ends); its verify_command must
        still pass unless skip_verify, which is recorded with your name."""
        return await orchestrator_of(ctx).update_status(
            task_id, Status.DONE, access.person(),
            reason=reason or "marked done by a person", by_person=True, skip_verify=skip_verify,
        )  # fmt: skip


def register_person_hand(server: Server, traced: Traced) -> None:
    """A person's hand on a running fleet: tell, pause, resume, redirect, answer."""

    @server.tool(title="Tell holders", annotations=WRITES)
    @traced
    async def task_tell(
        message: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
        task_id: TaskId | None = None,
        epic_id: Name | None = None,
        everyone: bool = False,
    ) -> Told:
        """Person only: a message to the agent holding task_id (and its every later holder),
        to every holder in epic_id, or (everyone) to every holder; it comes with the answer
        to their next call."""
        scope, key = scope_of(task_id, epic_id, everyone)
        return await orchestrator_of(ctx).tell(scope, key, message, access.person())

    @server.tool(title="Pause work", annotations=WRITES)
    @traced
    async def task_pause(
        ctx: Context,
        task_id: TaskId | None = None,
        epic_id: Name | None = None,
        everyone: bool = False,
        reason: Note | None = None,
    ) -> PauseResult:
        """Person only: pause task_id, epic_id, or (everyone) the fleet: not claimable until
        resumed; holders are told to checkpoint and stop. A pause costs no attempt."""
        scope, key = scope_of(task_id, epic_id, everyone)
        return await orchestrator_of(ctx).pause(scope, key, access.person(), reason)

    @server.tool(title="Resume work", annotations=WRITES)
    @traced
    async def task_resume(
        ctx: Context,
        task_id: TaskId | None = None,
        epic_id: Name | None = None,
        everyone: bool = False,
    ) -> PauseResult:
        """Person only: resume what task_pause paused."""
        scope, key = scope_of(task_id, epic_id, everyone)
        return await orchestrator_of(ctx).resume(scope, key, access.person())

    @server.tool(title="Redirect a task", annotations=WRITES)
    @traced
    async def task_redirect(
        task_id: TaskId,
        ctx: Context,
        description: Annotated[str, StringConstraints(max_length=8000)] | None = None,
        verify_command: VerifyCommand | None = None,
        restart: bool = False,
    ) -> UpdateResult:
        """Person only: a task's new description or verify_command. Its holder is told and
        works on; restart: its attempt ends (costing nothing) and the next starts from the
        last checkpoint with the new text."""
        return await orchestrator_of(ctx).redirect(
            task_id, access.person(), description=description, verify_command=verify_command,
            restart=restart,
        )  # fmt: skip

    @server.tool(title="Questions for people", annotations=READ_ONLY)
    @traced
    async def inbox(ctx: Context) -> Inbox:
        """Person only: agents' questions waiting for an answer (task_answer)."""
        return await orchestrator_of(ctx).inbox()

    @server.tool(title="Answer a question", annotations=WRITES)
    @traced
    async def task_answer(
        task_id: TaskId,
        answer: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
    ) -> UpdateResult:
        """Person only: answer a task's question; the task is claimable again and its next
        holder is given the question and the answer."""
        return await orchestrator_of(ctx).answer(task_id, answer, access.person())


def register_review(server: Server, traced: Traced) -> None:
    """A reviewer's verdict on the commit it was given."""

    @server.tool(title="Submit a review", annotations=WRITES)
    @traced
    async def review_submit(
        task_id: TaskId,
        verdict: Literal["approve", "request_changes"],
        notes: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
    ) -> UpdateResult:
        """Reviewer only: your verdict on the submitted commit you were given: approve, or
        request_changes with notes saying what is wrong and what to do (the next attempt is
        given them)."""
        caller = access.current()
        scope = None if caller is None else caller.scope
        if caller is None or scope is None or scope.purpose != "reviewer" or not scope.commit:
            raise ToolError(
                "review_submit needs the run token an autopilot made for this review; "
                "nothing was recorded"
            )
        return await orchestrator_of(ctx).review(
            task_id, scope.commit, caller.name,
            "approve" if verdict == "approve" else "changes", notes,
        )  # fmt: skip


def register_token_views(server: Server, traced: Traced) -> None:
    """Who may call this server, for operators."""

    @server.tool(title="List tokens", annotations=READ_ONLY)
    @traced
    async def token_list(ctx: Context) -> TokenList:
        """Operator only: who may call this server (token id, name, role, created, last
        used, revoked); never a secret."""
        found = await orchestrator_of(ctx).token_list()
        return TokenList(tokens=[TokenInfo(**t.shown()) for t in found])
