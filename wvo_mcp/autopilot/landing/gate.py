"""Runs a landing check in the sandbox and tells a proven flake from a change's failure.

The gate's run of one landing check: on a fresh checkout, its failures rerun, flakes proven.

Each landing step that verifies a tree asks it (steps.py's `Steps.verify`): the check runs
on a fresh checkout of the tree in the sandbox, reading only the JUnit reports the run
wrote; a failure of its tests is run again before anything is blamed; one that does not
come back is a flake only where it is proven one on the target (issue 69).

Carries out `rules/flakes.py` (what proves a flake, `Gate.check`) and `rules/junit.py`
(which tests a run's reports say failed). The autopilot's pre-flight run of the check, which
refuses to start on a red target, is `autopilot/loop.py:Autopilot._preflight`.

Carries out `rules/check_causes.py`."""

import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

import anyio

from wvo_mcp import scratch_dirs
from wvo_mcp.errors import VerificationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import check_causes, junit
from wvo_mcp.rules import flakes as flake_rules
from wvo_mcp.services import flakes
from wvo_mcp.services.landing_queue import Entry
from wvo_mcp.verification import clear_reports, read_junit, sandbox_summary

Materialize = Callable[[str, Path], Awaitable[object]]

# A worker's fix for a test that fails only some of the time with its change (issue 69).
FLAKY_FIX = (
    "A test that fails only some of the time with your change is your change's to fix: it "
    "shows a bug that shows some of the time (a race, an order, a clock, a seed), in the code "
    "or in the test. Make it pass on every run; a failure is taken as a flake only where the "
    "same test already flakes on the target."
)


class Gate:
    """One target's landing checks. `tip`: the target's tip now (None where each entry's own
    base is its target, as with --merge leave); `where`: the target as messages name it."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        materialize: Materialize,
        key: str,
        where: str,
        tip: Callable[[], Awaitable[str]] | None,
        say: Callable[[str], None],
    ) -> None:
        self.orchestrator = orchestrator
        self._materialize = materialize
        self.key = key
        self.where = where or "its branch"
        self._tip = tip
        self.say = say
        # What a check failed on a target's tip, run there to prove a flake: once per tip and
        # check, as each probe of a bisection asks again.
        self._on_target: dict[tuple[str, str], flake_rules.Seen] = {}
        self._proving = anyio.Lock()
        self._told_unread: set[str] = set()  # the committed reports _unread has named

    def _now(self) -> datetime:
        return self.orchestrator.clock()

    async def check(
        self, tip: str, tree: str, command: str | list[str], entries: Sequence[Entry] = ()
    ) -> str | VerificationFailed:
        """One check on `tip` (of `entries`; none: the target's own): a failure of its tests
        is run again on the same tree (the gate's `reruns`) before anything is blamed. One
        that does not come back is a flake only where it is proven one on the target
        (_flake_or_change): recorded, its tests (from its JUnit report) suggested for the
        quarantine, and the check passes. A failure only of quarantined tests passes, said;
        one that comes back is returned as it reproduced (rules/check_causes.py tells a test
        failure from a check that could not run, which is never rerun)."""
        shown = command if isinstance(command, str) else shlex.join(command)
        first, report = await checked_report(
            self.orchestrator, self._materialize, tip, command, unread=self._unread
        )
        if isinstance(first, str) or check_causes.cause(str(first), "").kind != "failing":
            await self.orchestrator.check_counted(shown, failed=not isinstance(first, str))
            return first
        failed = list(report.failed) if report is not None else []
        if failed and set(failed) <= await self.orchestrator.quarantined():
            await self.orchestrator.check_counted(shown, failed=True)
            head = str(first).split("\n", 1)[0]
            return f"{head}: only quarantined tests failed ({', '.join(failed[:10])})"
        started, last = time.monotonic(), first
        reruns = self.orchestrator.providers.gate.reruns
        for n in range(1, reruns + 1):
            again, _ = await checked_report(
                self.orchestrator, self._materialize, tip, command, n + 1
            )
            if isinstance(again, str):
                return await self._flake_or_change(entries, tree, command, first, failed, n,
                                                   again, started)  # fmt: skip
            last = again
        seconds = time.monotonic() - started
        await self.orchestrator.check_counted(shown, failed=True, reruns=reruns, seconds=seconds)
        return last

    async def _flake_or_change(
        self, entries: Sequence[Entry], tree: str, command: str | list[str],
        first: VerificationFailed, failed: list[str], n: int, again: str, started: float,
    ) -> str | VerificationFailed:  # fmt: skip
        """A failure that passed on rerun `n`: a flake, recorded and passed, where what failed
        is known to flake on the target (_proof); else the change's, with the evidence."""
        shown = command if isinstance(command, str) else shlex.join(command)
        proof, words, spent = await self._proof(entries, command, shown, failed)
        seconds = time.monotonic() - started
        which = f" of {', '.join(failed[:10])}" if failed else ""
        if proof:
            await self.orchestrator.db.write(
                partial(flakes.flaked, target=self.key, command=shown, tree=tree, tests=failed,
                        reruns=n, output=str(first), seconds=seconds, now=self._now(),
                        proof=words, proving=spent)
            )  # fmt: skip
            self.say(f"a flake{which}: `{shown}` failed on tree {tree[:12]}, then passed on "
                     f"rerun {n}, and {words}; nothing is blamed for it")  # fmt: skip
            return f"{again}; it failed on this tree, then passed on rerun {n}: a flake{which}"
        await self.orchestrator.check_counted(shown, failed=True, reruns=n + spent,
                                              seconds=seconds)  # fmt: skip
        evidence = f"it failed on run 1 and passed on run {n + 1} of this tree, but {words}"
        self.say(f"not a flake: `{shown}` on tree {tree[:12]}: {evidence}; it is the change's")
        head, _, rest = str(first).partition("\n")
        # Said first for the summary, and last, where a long output's cut to its tail
        # (steps.OUTPUT_TAIL) leaves it in what the worker starts from.
        return VerificationFailed(
            f"{head}; {evidence}: the change's failure, not a flake\n{rest}\n"
            f"Not a flake: {evidence}. {FLAKY_FIX}"
        )

    async def _proof(
        self, entries: Sequence[Entry], command: str | list[str], shown: str, failed: list[str]
    ) -> tuple[bool, str, int]:
        """Whether what `failed` on a tree of `entries`, then passed, is known to flake on the
        target (rules/flakes.py), and how, in words (or why not); with the runs on the
        target's tree this took. Its records say so, or, where they do not, the check run
        again on the tip the change is stacked on."""
        if not entries:
            return True, f"the tree is {self.where}'s own", 0
        known = await self.orchestrator.db.read(
            partial(flakes.known, target=self.key, command=shown, now=self._now())
        )
        suspects = flake_rules.suspects(flake_rules.failing(failed), known)
        if not suspects:
            return True, f"it is known to flake on {self.where}", 0
        base = await self._tip() if self._tip is not None else entries[0].base
        seen, spent = await self._seen_on(base, command, shown, suspects)
        if flake_rules.on_target(suspects, seen):
            return True, f"it failed on {self.where}'s own tree too (at {base[:12]})", spent
        missing = suspects - (seen or frozenset())
        runs = f"{spent} more time{'s' * (spent != 1)}" if spent else "again"
        there = (
            "could not run" if seen is None else "passed" if not seen else "did not fail it"
        )  # fmt: skip
        return False, (
            f"{flake_rules.named(missing)} never failed on {self.where}: no flake of it is "
            f"recorded there, and the check run {runs} on {self.where}'s own tree (at "
            f"{base[:12]}) {there}"
        ), spent  # fmt: skip

    async def _seen_on(
        self, base: str, command: str | list[str], shown: str, suspects: frozenset[str]
    ) -> tuple[flake_rules.Seen, int]:
        """What `command` fails on `base`'s tree (rules/flakes.Seen) when run there again, as
        many times as a change's tree is (the gate's reruns, one at least) or until it fails
        each suspect; once per tip, with the runs this took now. The tip's own pass, when it
        landed, is one draw of a flake and proves nothing: these are runs after it (2 on)."""
        async with self._proving:  # the probes of a bisection ask at once: it runs once
            key = (base, shown)
            if key in self._on_target:
                return self._on_target[key], 0
            found: frozenset[str] = frozenset()
            seen: flake_rules.Seen = found
            runs = max(1, self.orchestrator.providers.gate.reruns)
            spent = 0
            for run in range(2, 2 + runs):
                spent += 1
                result, report = await checked_report(
                    self.orchestrator, self._materialize, base, command, run
                )
                if isinstance(result, str):
                    continue
                if check_causes.cause(str(result), "").kind != "failing":
                    seen = None  # it could not run there: that shows nothing of the tests
                    break
                seen = found = found | flake_rules.failing(report.failed if report else [])
                if flake_rules.on_target(suspects, found):
                    break
            if len(self._on_target) > 64:
                self._on_target.clear()  # tips of long ago: the target has moved on
            self._on_target[key] = seen
            return seen, spent

    def _unread(self, commit: str, paths: list[str]) -> None:
        """Committed files the gate's junit glob matches, which a check's checkout drops before
        it runs: said once each, so a person knows why the gate does not read them."""
        new = [path for path in paths if path not in self._told_unread]
        if not new:
            return
        self._told_unread.update(new)
        shown = ", ".join(new[:10]) + (f" and {len(new) - 10} more" if len(new) > 10 else "")
        pattern = self.orchestrator.providers.gate.junit
        self.say(f"the gate does not read {shown}, committed in {commit[:12]}: it matches "
                 f"`gate: {{junit: {pattern}}}`, and a report counts only if the check writes "
                 "it, so each check's checkout drops it before the check runs (a link on the "
                 "way to a report is dropped too, never followed). If a test needs that "
                 "file, keep it where the glob does not reach")  # fmt: skip


async def checked(
    orchestrator: Orchestrator, materialize: Materialize, commit: str, command: str | list[str]
) -> str | VerificationFailed:
    """`command` run in the sandbox on a fresh checkout of exactly `commit`: its summary line,
    or the failure with its output tails."""
    return (await checked_report(orchestrator, materialize, commit, command))[0]


async def checked_report(
    orchestrator: Orchestrator,
    materialize: Materialize,
    commit: str,
    command: str | list[str],
    run: int = 1,
    unread: Callable[[str, list[str]], None] | None = None,
) -> tuple[str | VerificationFailed, junit.Report | None]:
    """As `checked`, with the run's JUnit report where the providers file names one: only
    what the run wrote, as every file the glob matches in `commit` is removed before it runs
    (`unread` is told which); `run`: its run on this tree (its reruns' are 2 and on)."""
    pattern = orchestrator.providers.gate.junit
    with scratch_dirs.temporary("verify", orchestrator.settings.state_root) as scratch:
        checkout = Path(scratch) / "tree"
        checkout.mkdir()
        await materialize(commit, checkout)
        if pattern:
            # A report a worker committed (naming only quarantined tests as failed) would
            # speak for the check, on this change and every one after it on the branch.
            committed = await anyio.to_thread.run_sync(clear_reports, checkout, pattern)
            if committed and unread is not None:
                unread(commit, committed)
        result: str | VerificationFailed
        try:
            result = sandbox_summary(command, await orchestrator.check(command, checkout, run))
        except VerificationFailed as exc:
            result = exc
        if not pattern:
            return result, None
        return result, await anyio.to_thread.run_sync(read_junit, checkout, pattern)
