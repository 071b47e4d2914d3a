"""GitHub's answers, REST's and GraphQL's alike, read as the forge's values (pure).

A pull request, a check run, a commit status, a review: read the same from either API, so
one look (GitHub.look: one GraphQL query) and the three reads it stands for decide alike."""

from collections.abc import Sequence
from typing import Any

from wvo_mcp.rules.pulls import Check, Comment, Pull, Review

# A look at a pull request in one query: itself, its last commit's checks (a check run's id
# says which of a name is newest), its reviews with their comments, and whether each
# review's author may push (who steers under the default rule).
LOOK = """query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      id number url state merged mergeCommit { oid } headRefOid headRefName baseRefName
      mergeStateStatus
      commits(last: 1) { nodes { commit { oid statusCheckRollup { contexts(first: 100) {
        nodes {
          __typename
          ... on CheckRun {
            databaseId name status conclusion detailsUrl url title summary text
          }
          ... on StatusContext { context state targetUrl description createdAt }
        }
      } } } } }
      reviews(last: 100) { nodes {
        fullDatabaseId author { __typename login } authorCanPushToRepository state commit { oid }
        body url comments(first: 100) { nodes { path line originalLine body } }
      } }
    }
  }
}"""


def pull(found: dict[str, Any]) -> Pull:
    return Pull(
        number=found["number"],
        url=found["html_url"],
        state="open" if found["state"] == "open" else "closed",
        merged=bool(found.get("merged") or found.get("merged_at")),
        head=found["head"]["sha"],
        branch=found["head"]["ref"],
        base=found["base"]["ref"],
        merge_commit=found.get("merge_commit_sha") if found.get("merged_at") else None,
        mergeable_state=found.get("mergeable_state") or "unknown",
        node_id=found.get("node_id") or "",
    )


def run(found: dict[str, Any]) -> Check:
    conclusion = found.get("conclusion") or ""
    output = found.get("output") or {}
    text = "\n".join(
        t for t in (output.get("title"), output.get("summary"), output.get("text")) if t
    )
    return Check(
        name=found["name"],
        state=state(found.get("status") == "completed", conclusion),
        conclusion=conclusion or found.get("status", "queued"),
        url=found.get("details_url") or found.get("html_url") or "",
        text=text,
    )


def pulled(found: dict[str, Any]) -> Pull:
    """A GraphQL pull request as _pull reads REST's: its mergeStateStatus (BEHIND, BLOCKED,
    CLEAN, DIRTY, DRAFT, HAS_HOOKS, UNKNOWN, UNSTABLE) is REST's mergeable_state upper-cased."""
    merged = bool(found.get("merged"))
    return Pull(
        number=int(found["number"]), url=str(found["url"]),
        state="open" if found.get("state") == "OPEN" else "closed", merged=merged,
        head=str(found["headRefOid"]), branch=str(found["headRefName"]),
        base=str(found["baseRefName"]),
        merge_commit=(found.get("mergeCommit") or {}).get("oid") if merged else None,
        mergeable_state=str(found.get("mergeStateStatus") or "unknown").lower(),
        node_id=str(found.get("id") or ""),
    )  # fmt: skip


def rollup(found: dict[str, Any], wanted: Sequence[str]) -> list[Check]:
    """A status check rollup's contexts as checks() reads REST's: the newest check run of
    each name, and, unless every `wanted` name is among those, the newest commit status of
    each name no run has."""
    contexts = (found.get("contexts") or {}).get("nodes") or []
    runs = sorted((c for c in contexts if c.get("__typename") == "CheckRun"),
                  key=lambda c: int(c.get("databaseId") or 0))  # fmt: skip
    checks = {check.name: check for check in map(run, map(_as_run, runs))}  # newest last
    if wanted and all(name in checks for name in wanted):
        return list(checks.values())
    statuses = sorted((c for c in contexts if c.get("__typename") == "StatusContext"),
                      key=lambda c: str(c.get("createdAt") or ""), reverse=True)  # fmt: skip
    for context in statuses:  # newest first: the first of a name
        checks.setdefault(str(context["context"]), status(_as_status(context)))
    return list(checks.values())


def _as_run(found: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL CheckRun in REST's words (its enums lower-cased), for _run."""
    return {
        "name": found["name"], "status": str(found.get("status") or "queued").lower(),
        "conclusion": str(found.get("conclusion") or "").lower() or None,
        "details_url": found.get("detailsUrl"), "html_url": found.get("url"),
        "output": {k: found.get(k) for k in ("title", "summary", "text")},
    }  # fmt: skip


def _as_status(found: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL StatusContext in REST's words, for _status: EXPECTED (reported by none yet)
    is pending."""
    state = str(found.get("state") or "PENDING").lower()
    return {
        "context": found["context"], "state": "pending" if state == "expected" else state,
        "target_url": found.get("targetUrl"), "description": found.get("description"),
    }  # fmt: skip


def author(found: dict[str, Any]) -> str:
    return str((found.get("author") or {}).get("login") or "?")


def reviewed(found: dict[str, Any]) -> Review:
    """A GraphQL review as reviews() reads REST's: the comments of one asking for changes."""
    comments: tuple[Comment, ...] = ()
    if found.get("state") == "CHANGES_REQUESTED":
        said = (found.get("comments") or {}).get("nodes") or []
        comments = tuple(Comment(str(c.get("path") or ""), c.get("line") or c.get("originalLine"),
                                 str(c.get("body") or "")) for c in said)  # fmt: skip
    return Review(
        id=int(found.get("fullDatabaseId") or 0), author=author(found),
        state=str(found.get("state") or ""),
        commit=str((found.get("commit") or {}).get("oid") or ""),
        body=str(found.get("body") or ""), url=str(found.get("url") or ""), comments=comments,
    )  # fmt: skip


def status(found: dict[str, Any]) -> Check:
    said = found.get("state", "pending")  # not `state`: that is the function below
    conclusion = {"error": "error", "failure": "failure", "success": "success"}.get(said, "")
    return Check(
        name=found["context"],
        state=state(said != "pending", conclusion),
        conclusion=said,
        url=found.get("target_url") or "",
        text=found.get("description") or "",
    )


def state(completed: bool, conclusion: str) -> Any:
    """A check's conclusion as the gate reads it: neutral and skipped pass, as GitHub's
    required checks count them."""
    if not completed:
        return "pending"
    return "success" if conclusion in ("success", "neutral", "skipped") else "failure"
