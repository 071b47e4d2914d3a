"""A person moving tasks: `requeue`, `cancel`, `done`, `approve`, `reject`, `rollback`.

A person moving tasks: `requeue`, `cancel`, `done`, `approve`, `reject`, and `rollback`
of a task's files to a checkpoint."""

import argparse

import anyio

from wvo_mcp.cli.command import Command, opened, person
from wvo_mcp.cli.output import say, show
from wvo_mcp.config import Settings
from wvo_mcp.rules.transitions import Status


def cmd_requeue(settings: Settings, args: argparse.Namespace) -> None:
    """Put a task back in the queue (a dead letter, a blocked or cancelled task, or a stuck
    in-progress one, whose holder then gets "lease lost")."""
    result = anyio.run(
        lambda: opened(settings, lambda o: o.requeue(args.task_id, person(args), args.reason))
    )
    say(result.message)


def _person_moves(
    settings: Settings, args: argparse.Namespace, to: Status, why: str, skip_verify: bool = False
) -> None:
    result = anyio.run(
        lambda: opened(
            settings,
            lambda o: o.update_status(
                args.task_id,
                to,
                person(args),
                reason=args.reason or why,
                by_person=True,
                skip_verify=skip_verify,
            ),
        )
    )
    say(result.message)


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> None:
    """Cancel a task as a person (a holder's lease ends; `requeue` brings it back)."""
    _person_moves(settings, args, Status.CANCELLED, "cancelled by a person")


def cmd_done(settings: Settings, args: argparse.Namespace) -> None:
    """Mark a task done as a person (its holder's lease ends); a verify_command still has to
    pass unless --skip-verify, which is recorded with your name."""
    _person_moves(
        settings, args, Status.DONE, "marked done by a person", skip_verify=args.skip_verify
    )


def cmd_approve(settings: Settings, args: argparse.Namespace) -> None:
    """Approve a task waiting in awaiting_approval."""
    result = anyio.run(
        lambda: opened(settings, lambda o: o.approve(args.task_id, person(args), args.note))
    )
    say(result.message)


def cmd_reject(settings: Settings, args: argparse.Namespace) -> None:
    """Reject a task waiting in awaiting_approval: cancel it (default), block it, re-queue
    it, or (mid-task) hand it back to its holder with --to in_progress."""
    result = anyio.run(
        lambda: opened(
            settings, lambda o: o.reject(args.task_id, person(args), args.note, Status(args.to))
        )
    )
    say(result.message)


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> None:
    """Restore the workspace's files from a checkpoint's git snapshot (index and branches are
    left alone); shows what will change first, and refuses over uncommitted work unless
    --force."""

    def run(apply: bool) -> str:
        return anyio.run(
            lambda: opened(
                settings, lambda o: o.rollback(args.task_id, args.to, force=args.force, apply=apply)
            )
        )

    show((run(apply=False) or "(no differences)") + "\n")
    if args.dry_run:
        say("dry run: nothing changed")
        return
    run(apply=True)
    say(f"restored checkpoint {args.to}")


def _task_id(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("task_id", help="The task's id.")


def _requeue_arguments(requeue: argparse.ArgumentParser) -> None:
    _task_id(requeue)
    requeue.add_argument("--by", help="Who re-queues (default: your user name).")
    requeue.add_argument("--reason", help="Why, kept in the task's events.")


def _cancel_arguments(cancel: argparse.ArgumentParser) -> None:
    _task_id(cancel)
    cancel.add_argument("--by", help="Who cancels (default: your user name).")
    cancel.add_argument("--reason", help="Why, kept in the task's events.")


def _done_arguments(done: argparse.ArgumentParser) -> None:
    _task_id(done)
    done.add_argument("--by", help="Who marks it done (default: your user name).")
    done.add_argument("--reason", help="Why, kept in the task's events.")
    done.add_argument(
        "--skip-verify",
        action="store_true",
        help="Skip the task's verify_command (recorded with your name).",
    )


def _approve_arguments(approve: argparse.ArgumentParser) -> None:
    _task_id(approve)
    approve.add_argument("--by", help="Who approves (default: your user name).")
    approve.add_argument("--note", help="A note, kept in the task's events.")


def _rollback_arguments(rollback: argparse.ArgumentParser) -> None:
    _task_id(rollback)
    rollback.add_argument("--to", type=int, required=True, help="The checkpoint's sequence number.")
    rollback.add_argument("--force", action="store_true", help="Overwrite uncommitted work.")
    rollback.add_argument("--dry-run", action="store_true", help="Only show what would change.")


def _reject_arguments(reject: argparse.ArgumentParser) -> None:
    _task_id(reject)
    reject.add_argument(
        "--note", required=True, help="Why; the holder and the task's events see it."
    )
    reject.add_argument("--by", help="Who rejects (default: your user name).")
    reject.add_argument(
        "--to",
        default="cancelled",
        choices=["cancelled", "blocked", "pending", "in_progress"],
        help="Where the task goes (default %(default)s).",
    )


REQUEUE = Command("requeue", cmd_requeue, _requeue_arguments)
CANCEL = Command("cancel", cmd_cancel, _cancel_arguments)
DONE = Command("done", cmd_done, _done_arguments)
APPROVE = Command("approve", cmd_approve, _approve_arguments)
ROLLBACK = Command("rollback", cmd_rollback, _rollback_arguments)
REJECT = Command("reject", cmd_reject, _reject_arguments)
