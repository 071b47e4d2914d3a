"""Where a team reviews: a forge (GitHub first) as the merge queue lands through it, behind
one small interface a second forge can implement (docs/forge.md maps each call to GitLab's
API).

- github: the interface over GitHub's REST API (githubkit), github.com or an Enterprise
  Server by its API base URL;
- credentials: the person's token, from their environment or `gh auth token`.

Every call runs on the autopilot's trusted side, off the event loop (autopilot/target.py's
Reach), and raises errors.Fault when the forge cannot be asked; nothing a worker or a check
runs ever sees the token or calls the forge. What the forge answers is data: a pull
request's text, a review's comments and a check's log reach a worker only as the context of
a returned submission, never as instructions to the autopilot.
"""

from dataclasses import dataclass, field
from typing import Literal, Protocol

Method = Literal["merge", "squash", "rebase"]


@dataclass(frozen=True)
class Repository:
    name: str  # owner/name, as the forge names it
    url: str  # its web page
    methods: tuple[Method, ...]  # the merge methods it allows, in its order of preference


@dataclass(frozen=True)
class Requirements:
    """What the forge requires before a pull request into a branch may merge, as read from
    it (rulesets and classic branch protection alike)."""

    checks: tuple[str, ...] = ()  # required status checks and check runs, by name
    approvals: int = 0  # approving reviews required
    strict: bool = False  # the head must contain the branch's tip
    known: bool = True  # False: some of it could not be read (the forge still enforces it)


@dataclass(frozen=True)
class Pull:
    number: int
    url: str  # its web page
    state: Literal["open", "closed"]
    merged: bool
    head: str  # the head commit
    branch: str  # the head branch
    base: str  # the base branch
    merge_commit: str | None = None  # once merged: what the base branch got
    mergeable_state: str = "unknown"  # the forge's own summary (GitHub: clean, blocked, …)


@dataclass(frozen=True)
class Check:
    name: str
    state: Literal["pending", "success", "failure"]
    conclusion: str  # the forge's word: success, failure, timed_out, cancelled, …
    url: str  # where a person reads it
    text: str = ""  # what the forge has of its output (a log's tail, when it gives one)


@dataclass(frozen=True)
class Comment:
    path: str
    line: int | None
    body: str


@dataclass(frozen=True)
class Review:
    id: int
    author: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit: str  # the head it reviewed
    body: str
    url: str
    comments: tuple[Comment, ...] = field(default=())


@dataclass(frozen=True)
class Merged:
    """What a merge call did: merged (`commit` is the base branch's new tip), or not, with
    the forge's reason (`moved`: the head was no longer the one given)."""

    merged: bool
    commit: str = ""
    moved: bool = False
    why: str = ""


class Forge(Protocol):
    """A forge's pull requests, as the merge queue (autopilot/lander.py) uses them. Each call
    is a request or a few; each raises errors.Fault when the forge cannot be asked."""

    def repository(self) -> Repository: ...

    def requirements(self, branch: str) -> Requirements: ...

    def find(self, branch: str, base: str) -> Pull | None:
        """The newest pull request from `branch` into `base`, open or not."""
        ...

    def open(self, branch: str, base: str, title: str, body: str) -> Pull: ...

    def edit(self, number: int, title: str, body: str) -> None: ...

    def pull(self, number: int) -> Pull: ...

    def checks(self, commit: str) -> list[Check]:
        """Every check run and commit status on `commit`, the newest of each name."""
        ...

    def reviews(self, number: int) -> list[Review]:
        """Its reviews, oldest first, with the comments of those that request changes."""
        ...

    def merge(self, number: int, head: str, method: Method, title: str, message: str) -> Merged:
        """Merge only while its head is `head`: a compare-and-swap."""
        ...

    def comment(self, number: int, body: str) -> None: ...

    @property
    def calls(self) -> int:
        """API requests sent so far (for BENCHMARKS.md's calls per landed change)."""
        ...
