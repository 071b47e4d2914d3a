"""A GitLab webhook delivery checked and read before anything acts on it (pure).

GitLab sends the webhook's secret token in clear (`X-Gitlab-Token`), so it is compared in
constant time with a setting of its own (WVO_GITLAB_WEBHOOK_SECRET): GitHub's secret is an
HMAC key that never travels, and one secret for both would hand GitHub's key to anyone who
reads a GitLab delivery. Where the instance signs deliveries (a signing token `whsec_…`,
Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`) and
the person gave that token too, the signature and its time are checked as well.

A delivery's id is `Idempotency-Key` (GitLab 17.4+: one per delivery, the same on each of
GitLab's retries), else `X-Gitlab-Event-UUID` (one per event); `X-Gitlab-Webhook-UUID`
names the webhook, not the delivery. Each GitLab event is read into what GitHub's says, so
one set of rules (rules/issue_tasks.py, rules/webhooks.py) decides both: an `Issue Hook` is
an `issues` event, a note on an issue an `issue_comment`, a pipeline on the landing branch
a workflow run. Carried out by `wvo_mcp/edge/gitlab_webhooks.py`."""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.webhooks import Run

ISSUE, NOTE, PIPELINE = "Issue Hook", "Note Hook", "Pipeline Hook"
CONFIDENTIAL = frozenset({"Confidential Issue Hook", "Confidential Note Hook"})
SIGNING_PREFIX = "whsec_"
SKEW_SECONDS = 300  # Standard Webhooks' tolerance for a signed delivery's timestamp
TRIGGERS = frozenset({"push", "schedule"})  # a pipeline that says how the landing branch is
_GITLAB_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC$")


def token_matches(secret: str, header: str | None) -> bool:
    """Whether `X-Gitlab-Token` is the secret (an empty secret admits nothing)."""
    if not secret or header is None:
        return False
    return hmac.compare_digest(secret.encode(), header.encode())


def signing_key(token: str) -> bytes | None:
    """The HMAC key a signing token (`whsec_<base64>`) carries; None when it is not one."""
    if not token.startswith(SIGNING_PREFIX):
        return None
    try:
        key = base64.b64decode(token[len(SIGNING_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def signature(token: str, ident: str, stamp: str, body: bytes) -> str:
    """The `webhook-signature` GitLab sends for `body` under signing token `token`."""
    key = signing_key(token)
    if key is None:
        raise ValueError("not a signing token: whsec_ and a base64 key")
    signed = ident.encode() + b"." + stamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_problem(
    token: str, ident: str | None, stamp: str | None, header: str | None, body: bytes,
    now: float,
) -> str:  # fmt: skip
    """Why a delivery is not signed by `token` ('' when it is): its `webhook-id`,
    `webhook-timestamp` (within SKEW_SECONDS of `now`, so a captured one is stale soon) and
    one of the `v1,` signatures in `webhook-signature`, compared in constant time."""
    if not ident or not stamp or not header:
        return "webhook-id, webhook-timestamp or webhook-signature is missing"
    if not stamp.isdigit() or abs(now - int(stamp)) > SKEW_SECONDS:
        return (f"webhook-timestamp is not within {SKEW_SECONDS} seconds of this server's "
                "clock: a delivery sent again later, or a clock that is wrong")  # fmt: skip
    wanted = signature(token, ident, stamp, body)
    found = [s for s in header.split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(wanted.encode(), s.encode()) for s in found):
        return "webhook-signature does not match the signing token"
    return ""


def delivery_id(idempotency: str | None, event_uuid: str | None) -> str:
    """The id a delivery is kept by ('' when it names none)."""
    return (idempotency or event_uuid or "").strip()


def confidential(event: str, payload: dict[str, Any]) -> bool:
    """Whether a delivery is about a confidential issue (its own event, or the issue says so)."""
    attributes, issue = payload.get("object_attributes"), payload.get("issue")
    return event in CONFIDENTIAL or any(
        isinstance(found, dict) and found.get("confidential") is True
        for found in (attributes if event == ISSUE else None, issue)
    )


def project_of(payload: dict[str, Any]) -> str:
    """The project a delivery is from (`group/…/project`), '' when it names none."""
    project = payload.get("project")
    return str(project.get("path_with_namespace") or "") if isinstance(project, dict) else ""


def named(repositories: Sequence[str]) -> list[str]:
    """The projects the GitLab webhook serves among `--repo`'s (those given as gitlab:PATH)."""
    return [r.removeprefix("gitlab:") for r in repositories if r.startswith("gitlab:")]


def served(project: str, repositories: Sequence[str]) -> bool:
    """Whether the webhook serves `project`: one named gitlab:PATH. GitLab's paths ignore
    case."""
    return project.lower() in {n.lower() for n in named(repositories)}


def moment(text: str) -> str:
    """A GitLab time as ISO 8601 UTC: notes' webhooks say `2015-05-17 17:06:40 UTC`."""
    found = _GITLAB_TIME.match(text.strip())
    return f"{found.group(1)}T{found.group(2)}Z" if found else text.strip()


def _labels(found: object) -> tuple[str, ...]:
    return tuple(
        str(label.get("title") or "") if isinstance(label, dict) else str(label)
        for label in (found if isinstance(found, list) else [])
    )


def issue_of(payload: dict[str, Any]) -> Issue:
    """An `Issue Hook`'s issue as rules/issue_tasks takes one; its author left '' (the hook
    names only their id: the driver asks who it is)."""
    attributes = payload.get("object_attributes") or {}
    labels = payload.get("labels") if "labels" in payload else attributes.get("labels")
    return Issue(
        number=int(attributes.get("iid") or 0), node_id=str(attributes.get("id") or ""),
        title=str(attributes.get("title") or ""), body=str(attributes.get("description") or ""),
        labels=_labels(labels), state="open" if attributes.get("state") == "opened" else "closed",
        url=str(attributes.get("url") or ""),
    )  # fmt: skip


def sender(payload: dict[str, Any]) -> str:
    """Who made the event: its `user`."""
    return str((payload.get("user") or {}).get("username") or "")


def by_its_author(payload: dict[str, Any]) -> bool:
    """Whether an issue's event was made by the issue's author (then whose words it holds is
    known without asking)."""
    attributes, user = payload.get("object_attributes") or {}, payload.get("user") or {}
    author = attributes.get("author_id")
    return author is not None and author == user.get("id")


def issue_action(payload: dict[str, Any], label: str, made: bool) -> tuple[str, str]:
    """What an `Issue Hook` is in GitHub's words (rules/issue_tasks.moves), and the label it
    added: open, reopen and close are opened, reopened and closed; an update that adds
    `label` is labeled (before its task exists: the label is the decision), one that
    changes the title or description edited, any other update changed."""
    action = str((payload.get("object_attributes") or {}).get("action") or "")
    if action in ("open", "reopen", "close"):
        return {"open": "opened", "reopen": "reopened", "close": "closed"}[action], ""
    changes = payload.get("changes") or {}
    labels = changes.get("labels") or {}
    before = {n.strip().lower() for n in _labels(labels.get("previous"))}
    after = {n.strip().lower() for n in _labels(labels.get("current"))}
    edited = "title" in changes or "description" in changes
    if label in after - before and not (made and edited):
        return "labeled", label
    if edited:
        return "edited", ""
    return ("unlabeled" if label in before - after else "changed"), ""


def note_of(payload: dict[str, Any]) -> IssueComment | str:
    """A new note on an issue, as the sync reads a comment; why not, when it is another
    (on a merge request, a commit or a snippet; a system note; an edit of an older one)."""
    attributes, issue = payload.get("object_attributes") or {}, payload.get("issue")
    on = attributes.get("noteable_type")
    if on != "Issue" or not isinstance(issue, dict):
        return f"Note Hook: a note on a {on or 'thing'} that is no issue: not acted on"
    if attributes.get("system"):
        return "Note Hook: GitLab's own system note: not acted on"
    if attributes.get("action") not in (None, "create"):
        return f"Note Hook: a note's {attributes.get('action')}, not a new note: not acted on"
    return IssueComment(
        id=int(attributes.get("id") or 0), number=int(issue.get("iid") or 0),
        user=sender(payload), body=str(attributes.get("note") or ""),
        created_at=moment(str(attributes.get("created_at") or "")),
        url=str(attributes.get("url") or ""),
    )  # fmt: skip


def pipeline_of(payload: dict[str, Any], branch: str) -> Run | str | None:
    """The pipeline a `Pipeline Hook` says ended on the landing branch (`branch`, '' for the
    project's default); a reason when it must not count (another ref, a tag, a merge
    request's, a fork's, one neither failed nor succeeded); None when it names no pipeline.
    A fork's merge request runs its pipeline under a ref of its own and for a
    merge_request_event, so only a push or a schedule on the branch counts."""
    attributes, project = payload.get("object_attributes"), payload.get("project")
    if not isinstance(attributes, dict) or not isinstance(project, dict):
        return None
    full = str(project.get("path_with_namespace") or "")
    if full.count("/") < 1:
        return None
    wanted = branch or str(project.get("default_branch") or "main")
    status = attributes.get("status")
    if status not in ("failed", "success"):
        return f"Pipeline Hook: ended {status}, neither failed nor passed: not acted on"
    if attributes.get("tag") or attributes.get("ref") != wanted:
        return f"Pipeline Hook: not on {wanted}: not acted on"
    request = payload.get("merge_request")
    if isinstance(request, dict) and request.get("source_project_id") not in (
            None, project.get("id")):  # fmt: skip
        return (f"Pipeline Hook: a pipeline of another project's code (a fork's merge "
                f"request), not of {full}'s {wanted}: not acted on")  # fmt: skip
    if attributes.get("source") not in TRIGGERS:
        return (f"Pipeline Hook: triggered by {attributes.get('source')!r}, not a push or a "
                f"schedule on {wanted}: not acted on")  # fmt: skip
    ident = int(attributes.get("id") or 0)
    url = f"{project.get('web_url') or ''}/-/pipelines/{ident}"
    sha = str(attributes.get("sha") or "")
    return Run("pipeline", full, "pipeline", "pipeline", wanted, sha, url, status == "success",
               forge="gitlab")  # fmt: skip
