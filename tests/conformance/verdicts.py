"""The conformance suite's verdicts and the baseline they are held to: one verdict per check
from the suite's raw checks, baseline.yaml's entries, and the differences between the two."""

from dataclasses import dataclass
from typing import Any

REVISIONS = ("2025-11-25", "2026-07-28")
# The statuses that are not a pass, most severe first (SUCCESS, INFO and SKIPPED pass).
NOT_PASSING = ("FAILURE", "WARNING")
BASELINE_STATUS = {"failure": "FAILURE", "warning": "WARNING"}
ENTRY_FIELDS = {"status", "revisions", "reason", "checks"}


@dataclass(frozen=True)
class Verdict:
    status: str  # FAILURE or WARNING
    message: str  # the suite's errorMessage, or its description when it gave none


@dataclass(frozen=True)
class Expected:
    status: str
    reason: str


def fold(checks_by_scenario: dict[str, list[dict[str, Any]]]) -> dict[str, Verdict]:
    """The checks that do not pass, keyed `scenario:check-id` as the suite names them. An id
    repeated within a scenario (a retried step) gets its worst occurrence, as the suite's own
    baselines treat it."""
    verdicts: dict[str, Verdict] = {}
    for scenario, checks in checks_by_scenario.items():
        for check in checks:
            status = check.get("status")
            if status not in NOT_PASSING:
                continue
            key = f"{scenario}:{check.get('id')}"
            message = str(check.get("errorMessage") or check.get("description") or "")
            known = verdicts.get(key)
            if known is None or NOT_PASSING.index(status) < NOT_PASSING.index(known.status):
                verdicts[key] = Verdict(status, message)
    return verdicts


def parse_baseline(data: Any) -> dict[str, dict[str, Expected]]:
    """baseline.yaml's entries per revision, keyed `scenario:check-id`; a malformed entry
    raises ValueError saying what is wrong and what is accepted."""
    if not isinstance(data, list):
        raise ValueError("the baseline must be a list of entries")
    by_revision: dict[str, dict[str, Expected]] = {revision: {} for revision in REVISIONS}
    for number, entry in enumerate(data, 1):
        where = f"entry {number}"
        if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
            raise ValueError(f"{where}: needs exactly the fields {sorted(ENTRY_FIELDS)}")
        status = BASELINE_STATUS.get(str(entry["status"]))
        if status is None:
            raise ValueError(f"{where}: status must be one of {sorted(BASELINE_STATUS)}")
        reason = entry["reason"]
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{where}: reason must say why the check does not pass")
        revisions = entry["revisions"]
        if (
            not isinstance(revisions, list)
            or not revisions
            or not all(isinstance(r, str) and r in REVISIONS for r in revisions)
        ):
            raise ValueError(
                f"{where}: revisions must be a non-empty list of {REVISIONS}, quoted (YAML "
                "reads a bare 2025-11-25 as a date)"
            )
        checks = entry["checks"]
        if not isinstance(checks, list) or not checks:
            raise ValueError(f"{where}: checks must be a non-empty list")
        for check in checks:
            if not isinstance(check, str) or check.count(":") != 1 or " " in check:
                raise ValueError(f"{where}: {check!r} is not `scenario:check-id`")
            for revision in revisions:
                if check in by_revision[revision]:
                    raise ValueError(f"{where}: {check} is listed twice for {revision}")
                by_revision[revision][check] = Expected(status, reason)
    return by_revision


def compare(revision: str, found: dict[str, Verdict], expected: dict[str, Expected]) -> list[str]:
    """What differs between the suite's verdicts and the baseline, one line each; empty when
    they agree exactly."""
    problems = []
    for key, verdict in sorted(found.items()):
        want = expected.get(key)
        if want is None:
            problems.append(
                f"new {verdict.status.lower()} {key}: {verdict.message} (fix the server, or, "
                f"if the suite asks for what wvo-mcp rightly lacks, add it to baseline.yaml for "
                f"{revision} with the reason)"
            )
        elif want.status != verdict.status:
            problems.append(
                f"{key} is now a {verdict.status.lower()}, baseline.yaml says "
                f"{want.status.lower()}: {verdict.message}"
            )
    for key, want in sorted(expected.items()):
        if key not in found:
            problems.append(
                f"{key} passes now (or is no longer reported): remove it from baseline.yaml "
                f"for {revision} (its reason was: {want.reason})"
            )
    return problems
