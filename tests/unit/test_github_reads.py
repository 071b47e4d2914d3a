"""GitHub's GraphQL status check rollup read as REST's check runs and commit statuses are
(wvo_mcp/forge/github_reads.py): the test forge serves no commit status, so they are held
here."""

from wvo_mcp.forge import github_reads as reads


def _run(
    ident: int, name: str, status: str, conclusion: str | None, text: str
) -> dict[str, object]:
    return {"__typename": "CheckRun", "databaseId": ident, "name": name, "status": status,
            "conclusion": conclusion, "detailsUrl": f"https://ci/{ident}", "url": "https://gh",
            "title": None, "summary": text, "text": None}  # fmt: skip


def _context(name: str, state: str, at: str) -> dict[str, object]:
    return {"__typename": "StatusContext", "context": name, "state": state,
            "targetUrl": f"https://ci/{name}/{at}", "description": at, "createdAt": at}  # fmt: skip


def test_a_rollup_reads_as_the_rest_check_runs_and_statuses_it_stands_for() -> None:
    rollup = {"contexts": {"nodes": [
        _run(9, "check", "COMPLETED", "FAILURE", "it broke"),
        _run(3, "check", "COMPLETED", "SUCCESS", "an older run"),
        _run(5, "lint", "IN_PROGRESS", None, ""),
        _context("deploy", "SUCCESS", "2026-01-02T00:00:00Z"),
        _context("deploy", "FAILURE", "2026-01-01T00:00:00Z"),
        _context("check", "SUCCESS", "2026-01-03T00:00:00Z"),  # a run of its name wins
        _context("sign", "EXPECTED", "2026-01-01T00:00:00Z"),
    ]}}  # fmt: skip
    found = {c.name: c for c in reads.rollup(rollup, ("check", "deploy"))}
    assert found["check"] == reads.run({
        "name": "check", "status": "completed", "conclusion": "failure",
        "details_url": "https://ci/9", "output": {"summary": "it broke"}})  # fmt: skip
    assert (found["lint"].state, found["lint"].conclusion) == ("pending", "in_progress")
    assert found["deploy"] == reads.status({
        "context": "deploy", "state": "success", "target_url": "https://ci/deploy/"
        "2026-01-02T00:00:00Z", "description": "2026-01-02T00:00:00Z"})  # fmt: skip
    assert (found["sign"].state, found["sign"].conclusion) == ("pending", "pending")
    # Every wanted name among the runs: no status read, as checks() reads none then.
    assert {c.name for c in reads.rollup(rollup, ("check",))} == {"check", "lint"}
