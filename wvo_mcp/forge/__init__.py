"""A forge (GitHub, GitLab) behind one small interface, through which the queue lands.

Where a team reviews: a forge as the merge queue lands through it, behind one small
interface each forge implements (docs/forge.md maps each call to GitHub's and GitLab's
APIs). What differs between forges the interface names: its `kind` (how its texts quote
others' words, its task ids' prefix), and that a pull request (GitLab: a merge request) and
an issue may be numbered apart (`comment_pull` and `comment`).

- select: which forge a remote or a repository name points at, and its client;
- github: the interface over GitHub's REST API (githubkit), github.com or an Enterprise
  Server by its API base URL;
- credentials: the person's token, from their environment or the forge's own CLI (`gh`,
  `glab`);
- authority: who steers (rules/trust.py), each role read from the forge with a bound.
- faults: a failed request as a Fault (a rate limit, a refused token, an outage), one rule
  for both forges' clients.

Every call runs on the autopilot's trusted side, off the event loop (autopilot/landing/target.py's
ForgeReach), and raises errors.Fault when the forge cannot be asked; nothing a worker or a check
runs ever sees the token or calls the forge. What the forge answers is data: a pull
request's text, a review's comments and a check's log reach a worker only as the context of
a returned submission, never as instructions to the autopilot. The data it answers with
is pure and lives with the rule that judges it (rules/pulls.py).
"""

from collections.abc import Sequence
from typing import Protocol

from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.pulls import (
    Access,
    Check,
    Comment,
    Look,
    Merged,
    Method,
    Pull,
    Repository,
    Requirements,
    Review,
)
from wvo_mcp.rules.text import ForgeKind
from wvo_mcp.rules.webhooks import FailedJob

__all__ = [
    "Access", "Check", "Comment", "FailedJob", "Forge", "ForgeKind", "Issue", "IssueComment",
    "Look", "Merged", "Method", "Pull", "Repository", "Requirements", "Review",
]  # fmt: skip


class Forge(Protocol):
    """A forge's pull requests, as the merge queue (autopilot/landing/pull_requests.py) uses them.
    Each call is a request or a few; each raises errors.Fault when the forge cannot be
    asked."""

    @property
    def where(self) -> str:
        """The repository and the forge, as messages name them."""
        ...

    @property
    def kind(self) -> ForgeKind:
        """Which forge it is: "github" or "gitlab"."""
        ...

    def repository(self) -> Repository: ...

    def requirements(self, branch: str) -> Requirements: ...

    def find(self, branch: str, base: str) -> Pull | None:
        """The newest pull request from `branch` into `base`, open or not."""
        ...

    def open(self, branch: str, base: str, title: str, body: str) -> Pull: ...

    def edit(self, number: int, title: str, body: str) -> None: ...

    def pull(self, number: int) -> Pull: ...

    def checks(self, commit: str, wanted: Sequence[str] = ()) -> list[Check]:
        """The check runs on `commit`, the newest of each name, and its commit statuses
        unless every `wanted` name is among the runs."""
        ...

    def reviews(self, number: int) -> list[Review]:
        """Its reviews, oldest first, with the comments of those that request changes."""
        ...

    def look(self, number: int, required: Requirements) -> Look:
        """The pull request, its head's checks and its reviews, in as few requests as the
        forge allows: GitHub one GraphQL query; GitLab the merge request (its head
        pipeline) and its approvals, its reviewers only when approvals fall short of
        `required` and its threads only when it says some block."""
        ...

    def merge(self, number: int, head: str, method: Method, title: str, message: str) -> Merged:
        """Merge only while its head is `head`: a compare-and-swap."""
        ...

    def enqueue(self, pull: Pull, head: str) -> Merged:
        """Into the forge's merge queue, only while its head is `head` (a compare-and-swap):
        `moved` when it no longer is."""
        ...

    def queued(self, pull: Pull) -> str | None:
        """Its merge queue entry's state (GitHub: QUEUED, AWAITING_CHECKS, MERGEABLE, …),
        or None when it is not in the queue."""
        ...

    def dropped(self, pull: Pull) -> Check | None:
        """Why the forge's queue let `pull` go unmerged, where the forge says: the failed
        check of what it tested (GitLab: its merge train car's pipeline, with the failed
        job's log). None where it does not (GitHub: a merge group's checks are read at the
        pull request)."""
        ...

    def comment(self, number: int, body: str) -> IssueComment:
        """On issue `number`."""
        ...

    def comment_pull(self, number: int, body: str) -> IssueComment:
        """On pull request `number` (GitLab numbers merge requests apart from issues)."""
        ...

    def close(self, number: int) -> None:
        """Pull request `number` closed unmerged (a batch the queue split)."""
        ...

    def comments(self, since: str, number: int | None = None) -> list[IssueComment]:
        """Comments on the repository's issues (or on issue `number`) updated since `since`
        (ISO 8601), oldest first."""
        ...

    def permission(self, login: str) -> str:
        """A user's role on the repository: admin, maintain, write, triage, read or none
        (none too for an account the forge does not know)."""
        ...

    def member(self, team: str, login: str) -> bool:
        """Whether `login` is an active member of `team` ("org/team-slug")."""
        ...

    def contains(self, ancestor: str, descendant: str) -> bool:
        """Whether commit `descendant` is `ancestor` or has it in its history (False when the
        forge knows either not)."""
        ...

    def issue(self, number: int) -> Issue | None:
        """One issue as it is now; None when it is no longer there (deleted, transferred)."""
        ...

    def closer(self, number: int) -> str | None:
        """What landed and closed issue `number` last, where the forge names it ("commit
        SHA", "merge request !N"); None when a person closed it, or the forge names nothing."""
        ...

    def labelled_by(self, number: int, label: str) -> str | None:
        """Who last added `label` to issue `number` (None: nobody the forge names)."""
        ...

    def finish_issue(self, number: int, label: str | None) -> None:
        """An issue whose task landed: labelled `label`, or closed as completed."""
        ...

    def issues(self, label: str) -> list[Issue]:
        """Every issue with `label`, open or closed (not pull requests), with its
        sub-issues' numbers (edge/issue_sync.py keeps their tasks in step)."""
        ...

    def failed_job(self, run_id: int) -> FailedJob | None:
        """A workflow run's first failing job, with its log's tail (rules/webhooks.tail)."""
        ...

    def failed_check(self, suite_id: int) -> FailedJob | None:
        """A check suite's first failing check run, with its output's tail."""
        ...

    def access(self, branch: str) -> list[Access]:
        """Each permission the queue needs, probed without writing anything (`doctor`)."""
        ...

    @property
    def calls(self) -> int:
        """API requests sent so far (for BENCHMARKS.md's calls per landed change)."""
        ...
