"""A tracker's issue as a task: its id, its definition, and what its comments say (pure).

A tracker's issue as a task (pure): its id (from the forge's kind, the repository and the
issue's number, so a sync run twice, or on two hosts, names the same task), its definition
(title, body, labels mapped by a table, "blocked by #N", a task list and sub-issues as
dependencies), and the issue's own key kept in its metadata. Carried out by
`wvo_mcp/edge/issue_sync.py` and `wvo_mcp/services/webhooks.py`.

The body is the issue's words: it becomes the task's description as data, however it is
built, and nothing in it is read as an instruction to wvo-mcp; only `#N` references are
taken from it, and only as dependencies on other synced issues."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.text import ForgeKind, quoted

# A task id's first part: whose issue it is. A GitLab project's path has any number of parts
# (gl/group/sub/project/12), so an id is read back against its repository's whole path.
PREFIXES: Mapping[ForgeKind, str] = {"github": "gh", "gitlab": "gl"}

# label -> the task fields it sets (complexity and the WSJF inputs, 1-10); the first label
# that sets a field wins. A team replaces it in its providers file's `issues: labels:`.
LABELS: Mapping[str, Mapping[str, int]] = {
    "size: xs": {"complexity": 1}, "size: s": {"complexity": 3},
    "size: m": {"complexity": 5}, "size: l": {"complexity": 7}, "size: xl": {"complexity": 9},
    "priority: critical": {"business_value": 10, "time_criticality": 10},
    "priority: high": {"business_value": 8, "time_criticality": 7},
    "priority: low": {"business_value": 3, "time_criticality": 2},
    "bug": {"risk_reduction": 7},
    "security": {"risk_reduction": 10, "time_criticality": 8},
}  # fmt: skip
FIELDS = ("complexity", "business_value", "time_criticality", "risk_reduction", "job_size")
_BLOCKED = re.compile(r"(?i)\b(?:blocked by|depends on|after)\s+((?:#\d+[\s,]*(?:and\s+)?)+)")
_TASK_LIST = re.compile(r"(?m)^\s*[-*]\s+\[[ xX]\]\s+#(\d+)\b")
_NUMBER = re.compile(r"#(\d+)")


@dataclass(frozen=True)
class Issue:
    number: int
    node_id: str  # the forge's own key: stable across renames and transfers
    title: str
    body: str
    labels: tuple[str, ...]
    state: str  # open, closed
    url: str
    sub_issues: tuple[int, ...] = field(default=())  # issues this one is made of
    author: str = ""  # who opened it (their login): whose words its body is
    confidential: bool = False  # GitLab's, seen by members alone: its words make no task


MAX_BODY = 8000  # characters of a task's description (models.TaskSpec)


def too_long(issue: Issue) -> str:
    """Why an issue's body makes no task, '' when it fits: cut short, it would be a task
    nobody wrote (the sync and the webhook skip it alike)."""
    if len(issue.body) <= MAX_BODY:
        return ""
    return (f"its body is {len(issue.body)} characters, and a task's description holds "
            f"{MAX_BODY}: shorten it, or split the issue")  # fmt: skip


def moves(made: bool, author: bool, sender: bool, action: str, added: str, label: str) -> bool:
    """Whether an issue's event moves its task, as the sync would take the issue
    (edge/issue_sync.py decides the same from what it reads): its words are its author's, so
    an issue whose author steers (`author`) is taken as it is; anyone else's becomes a task
    only when one who steers (`sender`) gives it the label, and its task then changes only
    by their edit.
    `made`: its task exists; `added`: the label a `labeled` event added. The driver is
    edge/github_webhooks.py."""
    if author:
        return True
    if not made:
        return sender and action == "labeled" and added.strip().lower() == label
    return sender and action == "edited"


# How each forge names itself and a change under review, in what the sync says and writes.
FORGE_NAMES: Mapping[ForgeKind, str] = {"github": "GitHub", "gitlab": "GitLab"}
_PULLS: Mapping[ForgeKind, tuple[str, str, str]] = {
    "github": ("pull request", "#", "/pull/"),
    "gitlab": ("merge request", "!", "/-/merge_requests/"),
}


def pull_named(number: int, kind: ForgeKind) -> str:
    """A change under review as its forge says it: "pull request #3", "merge request !3"."""
    word, sign, _ = _PULLS[kind]
    return f"{word} {sign}{number}"


def pull_here(url: str, repository: str, kind: ForgeKind) -> bool:
    """Whether `url` may be a pull request (a merge request) of `repository` on forge `kind`,
    as its web address shows it (under an instance's path prefix too): a sieve, as a deeper
    GitLab project's path ends with a shorter one's; the forge's own answer decides."""
    return f"/{repository.lower()}{_PULLS[kind][2]}" in url.lower()


def kind_of(task: str) -> ForgeKind:
    """The forge an issue's task (or a red run's) comes from, by its id's first part."""
    return next((k for k, p in PREFIXES.items() if task.startswith(f"{p}/")), "github")


def task_id(repository: str, number: int, kind: ForgeKind = "github") -> str:
    """The task an issue becomes: gh/<owner>/<repo>/<number> on GitHub,
    gl/<group>/…/<project>/<number> on GitLab (a valid branch name too)."""
    return f"{PREFIXES[kind]}/{repository}/{number}"


def red_prefix(repository: str, key: str, kind: ForgeKind = "github") -> str:
    """What the id of each red task of workflow (or app, or pipeline) `key` starts with."""
    return f"{PREFIXES[kind]}/{repository}/red/{key}/"


def references(body: str) -> list[int]:
    """The issues a body says this one waits for: "blocked by #3, #4", "depends on #5", and
    a task list of issues ("- [ ] #6"), in order, each once."""
    found: list[int] = []
    for match in _BLOCKED.finditer(body):
        found += [int(n) for n in _NUMBER.findall(match.group(1))]
    found += [int(n) for n in _TASK_LIST.findall(body)]
    return list(dict.fromkeys(found))


Table = Mapping[str, Mapping[str, int]]


def table(raw: object, source: str) -> dict[str, dict[str, int]]:
    """A team's own label table (`import --labels FILE.yaml`: `label: {field: 1-10}`), each
    entry checked; a refusal says which and what is accepted."""
    if not isinstance(raw, dict):
        raise ValidationFailed(f"{source}: give a mapping of label to fields, e.g. "
                               "`size: l: {complexity: 7}`")  # fmt: skip
    found: dict[str, dict[str, int]] = {}
    for label, sets in raw.items():
        if not isinstance(label, str) or not isinstance(sets, dict) or not sets:
            raise ValidationFailed(f"{source}: {label!r} maps to {sets!r}; give a mapping of "
                                   f"fields ({', '.join(FIELDS)}) to 1-10")  # fmt: skip
        for name, value in sets.items():
            if name not in FIELDS or not isinstance(value, int) or not 1 <= value <= 10:
                raise ValidationFailed(f"{source}: {label!r} sets {name!r} to {value!r}; a "
                                       f"label sets {', '.join(FIELDS)}, each to 1-10")  # fmt: skip
        found[label.strip().lower()] = dict(sets)
    return found


def fields_from_labels(labels: Sequence[str], table: Table) -> tuple[dict[str, int], list[str]]:
    """The task fields the labels set, and the labels the table does not know (shown, never
    guessed at)."""
    found: dict[str, int] = {}
    unknown = []
    for label in labels:
        sets = table.get(label.strip().lower())
        if sets is None:
            unknown.append(label)
            continue
        for name, value in sets.items():
            if name in FIELDS and isinstance(value, int) and 1 <= value <= 10:
                found.setdefault(name, value)
    return found, unknown


def definition(
    repository: str, issue: Issue, synced: set[int], table: Table, kind: ForgeKind = "github"
) -> dict[str, Any]:
    """The task definition (a roadmap entry) an open issue gives: its dependencies only on
    issues in `synced` (the labelled ones this sync knows; a reference to any other is
    shown in metadata, not followed)."""
    wanted = [*references(issue.body), *issue.sub_issues]
    deps = [task_id(repository, n, kind) for n in dict.fromkeys(wanted)
            if n in synced and n != issue.number]  # fmt: skip
    set_by, unknown = fields_from_labels(issue.labels, table)
    return {
        "id": task_id(repository, issue.number, kind),
        "title": (issue.title.strip() or f"issue #{issue.number}")[:200],
        "description": issue.body[:8000],
        "depends_on": deps,
        **set_by,
        "metadata": {
            "issue": issue.url,
            "forge_key": issue.node_id,
            "forge_issue": {"repository": repository, "number": issue.number,
                            "author": issue.author, "labels": list(issue.labels)[:20],
                            "unmapped_labels": unknown[:20],
                            "references_not_synced": [n for n in wanted if n not in synced][:20]},
        },
    }  # fmt: skip


# -- the conversation on an issue (driven by edge/issue_sync.py's sync) -----------------

MARK = "wvo-mcp:"  # in an HTML comment: what the sync wrote, and why
_TELL = re.compile(r"(?is)\A\s*/wvo\s+tell\b[ \t]*:?\s*(.+)\Z")


@dataclass(frozen=True)
class IssueComment:
    id: int
    number: int  # the issue's
    user: str  # login
    body: str
    created_at: str  # the forge's clock, ISO 8601 UTC
    url: str = ""


def number_of(repository: str, task: str, kind: ForgeKind = "github") -> int | None:
    """The issue a task is, if it is one of `repository`'s on forge `kind` (not a red run's
    task, not another project's, not anything else)."""
    prefix = task_id(repository, 0, kind)[:-1]
    rest = task.removeprefix(prefix) if task.startswith(prefix) else ""
    return int(rest) if rest.isdigit() and not rest.startswith("0") else None


def marked(body: str, key: str) -> bool:
    """Whether the sync wrote this comment for `key`: its mark ends what it writes (an
    agent's words quoted in it come before, and cannot end it)."""
    return body.rstrip().endswith(f"<!-- {MARK}{key} -->")


def question_comment(task: str, question: str, note: int, kind: ForgeKind = "github") -> str:
    """An agent's question as a comment on its issue (its words quoted for the forge: data,
    not markup, and on GitLab no quick action)."""
    return (
        f"**The agent working on `{task}` asks:**\n\n{quoted(question[:4000], kind)}\n\n"
        "A reply from someone who steers this repository's agents (its writers, unless the "
        "team says otherwise) answers it, as `wvo-mcp answer` would; replies from anyone else "
        f"are shown to the team, never taken as the answer.\n<!-- {MARK}question:{note} -->"
    )


def landed_comment(task: str, commit: str | None, target: str, pull: str | None) -> str:
    where = f"in {pull}" if pull else f"as {commit} on `{target}`" if commit else "(done)"
    return f"Landed {where}: task `{task}` is done.\n<!-- {MARK}landed:{task} -->"


def reply(body: str, writer: bool, asked: bool) -> tuple[str, str]:
    """What a comment on a synced issue is: ("answer", text) from one who steers (`writer`,
    rules/trust.py) to a question posted before it; ("tell", text) from one who steers that
    starts `/wvo tell`; ("shown", why) from anyone else where it would have been one of
    those; ("", "") otherwise (a comment, left alone). The driver is edge/issue_sync.py."""
    told = _TELL.match(body)
    if not writer:
        if asked or told:
            return "shown", "not taken as an answer or a message: its author does not steer"
        return "", ""
    if told:
        return "tell", told.group(1).strip()
    if asked and f"<!-- {MARK}" not in body:  # not what the sync itself wrote
        return "answer", body.strip()
    return "", ""
