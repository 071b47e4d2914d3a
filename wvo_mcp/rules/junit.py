"""A check's JUnit XML report, read safely: how many tests it ran and which failed (pure).

A check's JUnit XML report, read (pure): how many tests it ran and which failed. pytest
(`--junitxml`), jest-junit, vitest's and ava's reporters write it. The landing gate reads it
where the providers file says the check writes one (`gate: {junit: GLOB}`): a report of no
test is a check that ran none (verification.py).

The report is written by the check, in the sandbox, so it is hostile: its size is bounded
by the reader, and expat (2.4.1 and later: Python's own) refuses entity expansion bombs;
ElementTree resolves no external entity.

Carried out by `wvo_mcp/autopilot/landing/gate.py` and `wvo_mcp/verification.py`."""

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

MAX_BYTES = 16 << 20  # of one report
MAX_NAMES = 200  # failed tests named, of one report


@dataclass(frozen=True)
class Report:
    tests: int  # test cases it ran (skipped ones are not run)
    failed: tuple[str, ...]  # those that failed or erred, as `classname::name`


def parse(data: bytes) -> Report | None:
    """The report in `data`, or None where it is not one (too large, not XML, not JUnit)."""
    if len(data) > MAX_BYTES:
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    if root.tag not in ("testsuites", "testsuite"):
        return None
    ran, failed = 0, list[str]()
    for case in root.iter("testcase"):
        if case.find("skipped") is not None:
            continue
        ran += 1
        if case.find("failure") is not None or case.find("error") is not None:
            name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            if len(failed) < MAX_NAMES:
                failed.append(name[:300])
    return Report(ran, tuple(failed))


def merged(reports: list[Report]) -> Report:
    """Several reports (one per package, or per run of a runner) as one."""
    names = [name for report in reports for name in report.failed][:MAX_NAMES]
    return Report(sum(r.tests for r in reports), tuple(names))
