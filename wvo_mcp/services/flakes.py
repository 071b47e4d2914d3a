"""Flaky checks told from bad changes: check figures, proven flakes, the quarantine.

The rows are kept here; a flake is told from a change's failure in
`autopilot/landing/gate.py` (`Gate._flake_or_change`).

A flaky check told from a bad change (issue 57): each landing check's figures, each flake
with its evidence, and the quarantine of tests whose failure alone does not block a landing.
Its drivers: autopilot/landing/gate.py (it reruns a failing check and records what it found) and
a person's `wvo-mcp quarantine` (add, remove, list).

A flake is recorded only once proven on its target (issue 69, rules/flakes.py): what failed
was known to flake there, or failed and passed on the target's own tree. The records are
then what is known to flake on the target, so a change that makes a test flaky is returned
and never recorded: it cannot make its own flake known.

A flake's tests are entered by the autopilot as suggested: listed with their evidence, but
only a person's entry lets a test's failure through. The tests, their names and their
flaking are the code under test, which a worker's change can write: its planted flake must
never loosen the gate for the changes after it.

Carries out `rules/named_tests.py`."""

import json
from datetime import datetime, timedelta

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.models import CheckFigures, Flake, GateFigures, QuarantinedTest
from wvo_mcp.rules import flakes as rules
from wvo_mcp.rules import named_tests
from wvo_mcp.store import Tx

QUARANTINE_DAYS = 14  # how long a flake found by the gate keeps its test suggested
AUTOPILOT = "autopilot"  # who suggests a flake's tests
MAX_TEST = 300  # characters of a test's name
KNOWN_DAYS = QUARANTINE_DAYS  # how long a recorded flake shows its tests flake on the target
MAX_KNOWN = 500  # of a target's latest flakes, read to know what flakes there


def counted(
    tx: Tx, command: str, *, failed: bool, flaked: bool, reruns: int, seconds: float
) -> None:
    """One first run of a landing check on a tree, and the reruns its failure took."""
    figures = {"command": command[:2000], "failed": int(failed), "flaked": int(flaked),
               "reruns": reruns, "seconds": seconds}  # fmt: skip
    tx.run("check_counted", figures)


def flaked(
    tx: Tx, *, target: str, command: str, tree: str, tests: list[str], reruns: int,
    output: str, seconds: float, now: datetime, proof: str = "", proving: int = 0,
) -> None:  # fmt: skip
    """A failure that did not come back on the same tree, proven a flake on its target
    (`proof`, in words; `proving`: the runs on the target's tree that took, counted with the
    reruns): recorded with its evidence, and the tests that failed in it suggested for the
    quarantine (by the autopilot, for QUARANTINE_DAYS), where a person has not quarantined
    them already."""
    stamp = timeutil.to_text(now)
    counted(tx, command, failed=True, flaked=True, reruns=reruns + proving, seconds=seconds)
    tx.run("flake_insert", {"target": target, "command": command[:2000], "tree": tree,
                            "tests": json.dumps(tests[:200]), "reruns": reruns,
                            "output": output[-4000:], "at": stamp})  # fmt: skip
    evidence = (
        f"failed on tree {tree[:12]} of {target or 'its branch'}, then passed on rerun "
        f"{reruns} ({command[:200]})" + (f"; {proof}" if proof else "")
    )
    persons = {e.test for e in listed(tx, now) if e.live and e.added_by != AUTOPILOT}
    for test in tests[:200]:
        if test not in persons:
            put(tx, test, evidence, AUTOPILOT, QUARANTINE_DAYS, now)


def known(tx: Tx, *, target: str, command: str, now: datetime) -> frozenset[str]:
    """What is known to flake on `target` (named as rules/flakes.py names them): the tests of
    its flakes recorded in the last KNOWN_DAYS, the check `command` as a whole where one of
    it named no test, and the tests a person quarantined."""
    since = timeutil.to_text(now - timedelta(days=KNOWN_DAYS))
    names = set(quarantined(tx, now))
    found = tx.all("flakes_on_target", {"target": target, "since": since, "limit": MAX_KNOWN})
    for row in found:
        tests = json.loads(row["tests"])
        if tests:
            names.update(tests)
        elif row["command"] == command[:2000]:
            names.add(rules.WHOLE)
    return frozenset(names)


def put(tx: Tx, test: str, evidence: str, by: str, days: float, now: datetime) -> QuarantinedTest:
    """`test` quarantined for `days`, with its evidence (a person's reason, or a flake's).
    A person's name for a test that no report holds (a pytest node id) is refused: it
    would never match. The autopilot's come from a report as it is."""
    if not test.strip() or len(test) > MAX_TEST:
        raise ValidationFailed(
            f"a test is named as its JUnit report names it (classname::name), 1 to {MAX_TEST} "
            "characters. Nothing was changed"
        )
    wrong = named_tests.refusal(test) if by != AUTOPILOT else None
    if wrong is not None:
        raise ValidationFailed(f"{wrong}. Nothing was changed")
    if not 0 < days <= 365:
        raise ValidationFailed("--days is 1 to 365 (an entry expires). Nothing was changed")
    expires = timeutil.to_text(now + timedelta(days=days))
    tx.run("quarantine_put", {"test": test, "evidence": evidence[:2000], "added_by": by,
                              "now": timeutil.to_text(now), "expires_at": expires})  # fmt: skip
    stamp = timeutil.to_text(now)
    return QuarantinedTest(test=test, evidence=evidence[:2000], added_by=by, added_at=stamp,
                           expires_at=expires, live=True)  # fmt: skip


def drop(tx: Tx, test: str) -> None:
    if tx.run("quarantine_drop", {"test": test}) == 0:
        raise NotFound(f"{test!r} is not quarantined: `wvo-mcp quarantine list` shows what is")


def quarantined(tx: Tx, now: datetime) -> frozenset[str]:
    """The tests whose failure alone lets a landing through now: a person's live entries
    (the autopilot's are suggestions)."""
    return frozenset(e.test for e in listed(tx, now) if e.live and e.added_by != AUTOPILOT)


def listed(tx: Tx, now: datetime) -> list[QuarantinedTest]:
    rows = tx.all("quarantine_listed", {"now": timeutil.to_text(now)})
    return [QuarantinedTest(test=r["test"], evidence=r["evidence"], added_by=r["added_by"],
                            added_at=r["added_at"], expires_at=r["expires_at"],
                            live=bool(r["live"])) for r in rows]  # fmt: skip


def gate(tx: Tx, now: datetime) -> GateFigures:
    """Each check's figures and the quarantine, for status, the dashboard and the CLI."""
    checks = [
        CheckFigures(
            command=r["command"],
            runs=r["runs"],
            failures=r["failures"],
            flakes=r["flakes"],
            flake_rate=r["flakes"] / r["runs"] if r["runs"] else 0.0,
            reruns=r["reruns"],
            rerun_seconds=float(r["rerun_seconds"]),
        )
        for r in tx.all("check_figures_all")
    ]
    flakes = [
        Flake(target=r["target"], command=r["command"], tree=r["tree"],
              tests=json.loads(r["tests"]), reruns=r["reruns"], at=r["at"])
        for r in tx.all("flakes_recent", {"limit": 20})
    ]  # fmt: skip
    return GateFigures(checks=checks, quarantine=listed(tx, now), flakes=flakes)
