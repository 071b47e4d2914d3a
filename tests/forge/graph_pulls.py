"""The test GitHub's pull requests as its GraphQL API serves them: `repository.pullRequest`
with its head's status check rollup and its reviews, from the state and the very objects
its REST answers come from (tests/forge/server.py: run_json, review_json), so both APIs say
the same. The query is validated against GitHub's own schema and the answer shaped by it
(tests/forge/graph.py): a field the schema lacks fails there."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.forge.server import Forge, PullState, ReviewState, RunState

WRITERS = ("write", "maintain", "admin")  # the roles that may push (authorCanPushToRepository)


def repository(forge: "Forge") -> Any:
    """The root field `repository(owner:, name:)` of `forge`."""

    def resolve(info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
        if (owner.lower(), name.lower()) != (forge.owner.lower(), forge.name.lower()):
            return None  # GitHub: "Could not resolve to a Repository"
        return {"__typename": "Repository", "pullRequest": _pull_request(forge)}

    return resolve


def _pull_request(forge: "Forge") -> Any:
    def resolve(info: Any, number: int, **_: Any) -> dict[str, Any] | None:
        pull = forge.pulls.get(number)
        if pull is None:
            return None
        forge._sync(pull)  # as a REST read of it: a pushed head is seen
        return _pull(forge, pull)

    return resolve


def _pull(forge: "Forge", pull: "PullState") -> dict[str, Any]:
    state = "MERGED" if pull.merged else "OPEN" if pull.state == "open" else "CLOSED"
    # REST's mergeable_state (pull_json), in GraphQL's MergeStateStatus words.
    merge_state = forge.mergeable_state(pull) if pull.state == "open" else "unknown"
    run = forge.runs.get(pull.head)
    rollup = None if run is None else {"contexts": _listed([_check_run(forge, run)])}
    reviews = [_review(forge, r) for r in forge.reviews if r.number == pull.number]
    return {
        "id": f"PR_{pull.number}", "number": pull.number,
        "url": f"{forge.web}/{forge.full}/pull/{pull.number}", "state": state,
        "merged": pull.merged,
        "mergeCommit": {"oid": pull.merge_commit} if pull.merged and pull.merge_commit else None,
        "headRefOid": pull.head, "headRefName": pull.branch, "baseRefName": pull.base,
        "mergeStateStatus": merge_state.upper(),
        "commits": _listed([{"commit": {"oid": pull.head, "statusCheckRollup": rollup}}]),
        "reviews": _listed(reviews),
    }  # fmt: skip


def _check_run(forge: "Forge", run: "RunState") -> dict[str, Any]:
    """A check run as a rollup context: the REST check run's fields (run_json)."""
    found = forge.run_json(run)
    output = found.get("output") or {}
    return {
        "__typename": "CheckRun", "databaseId": found["id"], "name": found["name"],
        "status": str(found["status"]).upper(),
        "conclusion": found["conclusion"].upper() if found.get("conclusion") else None,
        "detailsUrl": found.get("details_url"), "url": found["html_url"],
        "title": output.get("title"), "summary": output.get("summary"),
        "text": output.get("text"),
    }  # fmt: skip


def _review(forge: "Forge", review: "ReviewState") -> dict[str, Any]:
    """A review as GraphQL's PullRequestReview: the REST review's fields (review_json), its
    comments as list_comments_for_review gives them, and whether its author may push."""
    found = forge.review_json(review)
    comments = [{"path": path, "line": line, "originalLine": line, "body": body}
                for path, line, body in review.comments]  # fmt: skip
    return {
        "fullDatabaseId": found["id"],
        "author": {"__typename": "User", "login": found["user"]["login"]},
        "authorCanPushToRepository": forge.roles.get(review.user, "none") in WRITERS,
        "state": found["state"], "commit": {"oid": found["commit_id"]}, "body": found["body"],
        "url": found["html_url"], "comments": _listed(comments),
    }  # fmt: skip


def _listed(nodes: list[dict[str, Any]]) -> Any:
    """A connection (`first:` or `last:` of its nodes), with its totalCount."""

    def resolve(info: Any, first: int | None = None, last: int | None = None,
                **_: Any) -> dict[str, Any]:  # fmt: skip
        found = nodes[-last:] if last else nodes[:first] if first else nodes
        return {"nodes": found, "totalCount": len(nodes)}

    return resolve
