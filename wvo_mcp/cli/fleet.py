"""A person's hand on a running fleet: tell, pause, redirect, answer, quarantine.

A person's hand on a running fleet: `tell` holders, `pause` and `resume` work, `redirect` a
task, the `inbox` of agents' questions with their `answer` (docs/operations.md), and the
landing gate's `quarantine` of flaky tests (docs/autopilot.md)."""

import argparse
from pathlib import Path

import anyio

from wvo_mcp.cli.command import Command, opened, person
from wvo_mcp.cli.output import print_json, say, table, warn
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import QuarantinedTest
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.providers import Providers
from wvo_mcp.rules.pauses import scope_of

NO_REPORT = (
    "warning: the providers file ({source}) names no JUnit report (gate: {{junit: GLOB}}), "
    "so the gate never knows which tests failed: a failure is the whole check's, and this "
    "entry lets none through. "
    "Have the check write one (pytest: --junitxml=reports/junit.xml) and name it there "
    "(gate: {{junit: reports/*.xml}})"
)


def cmd_tell(settings: Settings, args: argparse.Namespace) -> None:
    """Tell the agent holding a task (--task), every holder in an epic (--epic), or every
    holder (--all): the message comes with the answer to its next call, and the task's next
    holder is given it too."""
    scope, key = scope_of(args.task, args.epic, args.all)
    told = anyio.run(
        lambda: opened(settings, lambda o: o.tell(scope, key, args.message, person(args)))
    )
    say(told.message)


def cmd_pause(settings: Settings, args: argparse.Namespace) -> None:
    """Pause a task (--task), an epic (--epic) or the whole fleet (--all): not claimable until
    resumed, and its holders are told to checkpoint and stop; a pause costs no attempt (the
    tokens a stopped run used are charged as any run's)."""
    scope, key = scope_of(args.task, args.epic, args.all)
    done = anyio.run(
        lambda: opened(settings, lambda o: o.pause(scope, key, person(args), args.reason))
    )
    say(done.message)


def cmd_resume(settings: Settings, args: argparse.Namespace) -> None:
    """Resume what `pause` paused: claimable again, the next attempt starting from the last
    checkpoint."""
    scope, key = scope_of(args.task, args.epic, args.all)
    done = anyio.run(lambda: opened(settings, lambda o: o.resume(scope, key, person(args))))
    say(done.message)


def cmd_redirect(settings: Settings, args: argparse.Namespace) -> None:
    """Change a task's description or verify_command while it runs: its holder is told and
    works on, or with --restart its attempt ends (costing nothing) and the next starts from
    the last checkpoint with the new text."""
    description = args.description
    if args.description_file is not None:
        description = Path(args.description_file).read_text()
    verify = args.verify
    moved = anyio.run(
        lambda: opened(
            settings,
            lambda o: o.redirect(
                args.task_id, person(args), description=description, verify_command=verify,
                restart=args.restart,
            ),
        )
    )  # fmt: skip
    say(moved.message)


def cmd_inbox(settings: Settings, args: argparse.Namespace) -> None:
    """Agents' questions waiting for a person's answer (`wvo-mcp answer ID TEXT`)."""
    found = anyio.run(lambda: opened(settings, lambda o: o.inbox()))
    if args.json:
        print_json(found.model_dump(mode="json"))
        return
    table(
        ["task", "asked by", "at", "title", "question"],
        [
            [q.task_id, q.asked_by, q.asked_at, q.title[:40], q.question[:200]]
            for q in found.questions
        ],
    )
    if found.outsiders:
        say("\nNot acted on: the words of those who do not steer (docs/forge.md)")
        table(
            ["task", "who", "at", "what they said"],
            [[o.task_id, o.who, o.at, o.said[:200]] for o in found.outsiders],
        )


def cmd_answer(settings: Settings, args: argparse.Namespace) -> None:
    """Answer a task's question: the task is claimable again, and its next holder is given
    the question and your answer with the last checkpoint."""
    moved = anyio.run(
        lambda: opened(settings, lambda o: o.answer(args.task_id, args.text, person(args)))
    )
    say(moved.message)


def cmd_quarantine(settings: Settings, args: argparse.Namespace) -> None:
    """The landing gate's flaky tests, whose failure alone blocks no landing: list them and
    each check's flake figures, add one (--reason, --days), or remove one. A quarantine
    needs the check's JUnit report (`gate: {junit: GLOB}` in the providers file): without
    it the tests that failed are unknown, and no entry lets a failure through."""
    if args.action != "list" and not args.test:
        raise ValidationFailed(f"{args.action} needs the test, as its JUnit report names it")
    if args.action == "add":
        if not args.reason:
            raise ValidationFailed("add needs --reason: why the test is quarantined")

        async def add(o: Orchestrator) -> tuple[QuarantinedTest, Providers]:
            entry = await o.quarantine(args.test, args.reason, person(args), args.days)
            return entry, o.providers

        entry, providers = anyio.run(lambda: opened(settings, add))
        say(f"quarantined {entry.test} until {entry.expires_at}: its failure alone blocks no "
            "landing, and is said where it lands")  # fmt: skip
        if providers.gate.junit is None:
            warn(NO_REPORT.format(source=providers.source))
        return
    if args.action == "remove":
        anyio.run(lambda: opened(settings, lambda o: o.unquarantine(args.test)))
        say(f"{args.test} is no longer quarantined: its failure blocks a landing again")
        return
    found = anyio.run(lambda: opened(settings, lambda o: o.gate()))
    if args.json:
        print_json(found.model_dump(mode="json"))
        return
    table(
        ["check", "runs", "failures", "flakes", "flake rate", "reruns", "rerun time"],
        [[c.command[:60], c.runs, c.failures, c.flakes, f"{c.flake_rate:.1%}", c.reruns,
          f"{c.rerun_seconds:.1f} s"] for c in found.checks],
    )  # fmt: skip
    if found.flakes:
        table(
            ["flaked at", "target", "tree", "tests", "reruns"],
            [[f.at, f.target or "-", f.tree[:12], ", ".join(f.tests[:3])[:80] or "-",
              f.reruns] for f in found.flakes],
        )  # fmt: skip
    table(
        ["quarantined test", "until", "by", "evidence"],
        [[q.test[:60], q.expires_at if q.live else f"{q.expires_at} (expired)", q.by,
          q.evidence[:120]] for q in found.quarantine],
    )  # fmt: skip


def _quarantine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("list", "add", "remove"), default="list",
        help="List the quarantine and the checks' figures (the default), add a test, or "
        "remove one.",
    )  # fmt: skip
    parser.add_argument(
        "test", nargs="?",
        help="The test, as the check's JUnit report names it: classname::name, e.g. pytest's "
        "tests.test_x::test_y (not its node id tests/test_x.py::test_y). A quarantine works "
        "only where the providers file names the report: gate: {junit: GLOB}.",
    )  # fmt: skip
    parser.add_argument("--reason", help="Why it is quarantined (add): the evidence shown.")
    parser.add_argument("--days", type=float, default=14.0, help="Days until it expires (14).")
    parser.add_argument("--by", help="Who (default: your user name).")
    parser.add_argument("--json", action="store_true", help="As JSON (list).")


def _scope(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--task", metavar="ID", help="One task.")
    where.add_argument("--epic", metavar="EPIC", help="Every task of an epic.")
    where.add_argument("--all", action="store_true", help="The whole fleet.")
    parser.add_argument("--by", help="Who (default: your user name).")


def _tell_arguments(tell: argparse.ArgumentParser) -> None:
    _scope(tell)
    tell.add_argument("message", help="What to tell (at most 4000 characters).")


def _pause_arguments(pause: argparse.ArgumentParser) -> None:
    _scope(pause)
    pause.add_argument("--reason", help="Why; the holders told to stop see it.")


def _redirect_arguments(redirect: argparse.ArgumentParser) -> None:
    redirect.add_argument("task_id", metavar="ID", help="The task.")
    text = redirect.add_mutually_exclusive_group()
    text.add_argument("--description", help="The task's new description.")
    text.add_argument("--description-file", metavar="FILE", help="Read it from FILE.")
    redirect.add_argument("--verify", help="Its new verify_command (a /bin/sh -c string).")
    redirect.add_argument(
        "--restart", action="store_true", help="End the holder's attempt; the next one starts."
    )
    redirect.add_argument("--by", help="Who (default: your user name).")


def _inbox_arguments(inbox: argparse.ArgumentParser) -> None:
    inbox.add_argument("--json", action="store_true", help="As JSON.")


def _answer_arguments(answer: argparse.ArgumentParser) -> None:
    answer.add_argument("task_id", metavar="ID", help="The task whose question you answer.")
    answer.add_argument("text", help="Your answer (at most 4000 characters).")
    answer.add_argument("--by", help="Who answers (default: your user name).")


TELL = Command("tell", cmd_tell, _tell_arguments)
PAUSE = Command("pause", cmd_pause, _pause_arguments)
RESUME = Command("resume", cmd_resume, _scope)
REDIRECT = Command("redirect", cmd_redirect, _redirect_arguments)
INBOX = Command("inbox", cmd_inbox, _inbox_arguments)
ANSWER = Command("answer", cmd_answer, _answer_arguments)
QUARANTINE = Command("quarantine", cmd_quarantine, _quarantine_arguments)
