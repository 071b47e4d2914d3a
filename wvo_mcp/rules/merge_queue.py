"""The merge queue's decisions: which batch prefixes to verify next, who gets a failure (pure).

The merge queue's decisions, free of I/O: which prefixes of a failed batch to verify
next (bisection over as many test slots as there are), whether a submission that does
not land goes back to a worker or to a person, and whether one that changes nothing is done.

Carried out by `wvo_mcp/autopilot/landing/onto_branch.py`, `wvo_mcp/autopilot/landing/steps.py`
and `wvo_mcp/autopilot/apart.py`."""

from collections.abc import Iterable, Mapping, Sequence

WILDCARDS = "*?["


def probes(good: int, bad: int, slots: int) -> list[int]:
    """Prefix lengths to verify next, strictly between `good` (its prefix passed; 0 is the
    target as it stands) and `bad` (its prefix failed): up to `slots` of them, evenly
    spaced, so each round of parallel checks narrows the gap by slots + 1. [] when the
    culprit is found (bad == good + 1)."""
    gap = bad - good
    if gap <= 1:
        return []
    count = min(max(1, slots), gap - 1)
    return sorted({good + (gap * i) // (count + 1) for i in range(1, count + 1)})


def narrow(good: int, bad: int, passed: Mapping[int, bool]) -> tuple[int, int]:
    """(good, bad) after verifying the prefixes in `passed`: the shortest failing prefix is
    the new bad, the longest passing one below it the new good."""
    bad = min([n for n, ok in passed.items() if not ok and good < n < bad], default=bad)
    good = max([n for n, ok in passed.items() if ok and good < n < bad], default=good)
    return good, bad


def hold_for_person(returns: int, max_returns: int, persons_commits: Sequence[str]) -> str | None:
    """Why a person, not a worker, gets a submission that does not land; None: a worker
    does (a new attempt, starting from what went wrong)."""
    if persons_commits:
        shown = ", ".join(c[:12] for c in persons_commits[:5])
        return f"it conflicts with work a person committed ({shown})"
    if returns >= max_returns:
        return f"it came back {returns} time(s) already (--max-returns {max_returns})"
    return None


def empty_done(metadata: Mapping[str, object]) -> bool:
    """Whether a submission that changes nothing on the target is done, with no check: only
    where its task says it needs no change (metadata.needs_change: false)."""
    return metadata.get("needs_change") is False


def empty_hold(returns: int) -> str | None:
    """Why a person, not its worker, gets a submission that changed nothing and needed a
    change; None: its worker does, once."""
    return "its submission changed nothing again" if returns else None


def checks(
    project: str | None, verify_commands: Sequence[str | list[str] | None]
) -> list[str | list[str]]:
    """What a tree must pass to land: the project-wide check, then each entry's own
    verify_command, each once."""
    found: list[str | list[str]] = []
    for command in [project, *verify_commands]:
        if command is not None and command not in found:
            found.append(command)
    return found


def declared(metadata: Mapping[str, object]) -> list[str]:
    """The files or areas a task declares it touches (metadata.files: paths, folders or
    globs); anything else there is ignored."""
    found = metadata.get("files")
    if not isinstance(found, list):
        return []
    return [f.strip("/") for f in found if isinstance(f, str) and f.strip("/")][:200]


def _fixed(pattern: str) -> str:
    """The part of a path or glob before its first wildcard."""
    cut = min((pattern.find(c) for c in WILDCARDS if c in pattern), default=len(pattern))
    return pattern[:cut]


def overlaps(mine: Iterable[str], theirs: Iterable[str]) -> bool:
    """Whether two sets of paths, folders or globs may touch a file in common: one's fixed
    part (before any wildcard) leads to, or lies under, the other's. It errs towards an
    overlap: a preference, never a lock, is made of it."""
    others = [_fixed(t) for t in theirs]
    for pattern in mine:
        fixed = _fixed(pattern)
        for other in others:
            if fixed.startswith(other) or other.startswith(fixed):
                return True
    return False
