"""Whether a failure that did not come back is a flake or the change's own (pure).

Whether a failure that did not come back is a flake (pure, issue 69). One pass among a
check's reruns proves nothing by itself: a change can make a test fail half of the time.
A failure is a flake only where what failed is already known to flake on the target: a
flake recorded there (services/flakes.py) or a person's quarantine, else the same tests
failing when the check is run again on the target's own tree. Otherwise it is the
change's, and goes back to its worker with the evidence.

Carried out by `wvo_mcp/autopilot/landing/gate.py` and `wvo_mcp/services/flakes.py`: the gate
(Gate.check) reads the records, and runs the check on the target's tree again (its reruns'
count) only when they do not settle it.

What failed is named as the gate's JUnit report names its tests; where no report names one,
by WHOLE: the check as a whole."""

from collections.abc import Collection, Sequence

# The check as a whole, where no report names a failing test: XML cannot carry a NUL, so no
# test a report names (and a worker's change writes) can pass for it.
WHOLE = "\x00the check"

# What a run on the target's tree failed, by name: empty where it passed, None where it
# could not run (which shows nothing about the tests).
Seen = frozenset[str] | None


def failing(tests: Sequence[str]) -> frozenset[str]:
    """What a failed run failed, by name: the tests its report names, else the check."""
    return frozenset(tests) if tests else frozenset({WHOLE})


def suspects(failed: Collection[str], known: Collection[str]) -> frozenset[str]:
    """What failed and is not known to flake on the target: none, and it is a flake."""
    return frozenset(failed) - frozenset(known)


def on_target(suspects: Collection[str], seen: Seen) -> bool:
    """Whether each suspect failed too when the check ran on the target's own tree (the tip
    the change is stacked on): then it fails without the change, flaking there (the target
    passed it to land) or red there, and neither is the change's to fix."""
    return seen is not None and frozenset(suspects) <= seen


def named(names: Collection[str], limit: int = 10) -> str:
    """`names` as a message says them (the check as a whole as such)."""
    shown = sorted("the check as a whole" if n == WHOLE else n for n in names)
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
