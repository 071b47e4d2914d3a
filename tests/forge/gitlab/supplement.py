"""What the queue uses of GitLab's REST API that go-gitlab 0.73.1 predates, hand-written.

go-gitlab 0.73.1 (September 2022) has no merge trains car endpoints, no reviewers list, no
`personal_access_tokens/self`, no inherited group member, no `detailed_merge_status`
(GitLab 15.6) and no approval rule's `applies_to_all_protected_branches` (GitLab 15.3).
Each shape below is written in this project's own form from the GitLab doc page named
beside it; `SUPPLEMENTED` lists them all so docs/forge.md can say which part of the test
GitLab's contract is ours rather than go-gitlab's.
"""

from collections.abc import Mapping

from tests.forge.gitlab.shapes import (
    BOOLEAN,
    DATE_TIME,
    INTEGER,
    STRING,
    Operation,
    Shape,
    array,
    nullable,
    obj,
    ref,
)

DOCS = "https://docs.gitlab.com/api"
PROJECT = "/api/v4/projects/{id}"
MR = PROJECT + "/merge_requests/{merge_request_iid:int}"

# A merge train car, as the merge trains page shows it (merge request and pipeline cut down).
CAR = obj(
    {
        "id": INTEGER,
        "merge_request": obj(
            {
                "id": INTEGER,
                "iid": INTEGER,
                "project_id": INTEGER,
                "title": STRING,
                "description": nullable(STRING),
                "state": STRING,
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
                "web_url": STRING,
            }
        ),
        "user": ref("BasicUser"),
        "pipeline": nullable(
            obj(
                {
                    "id": INTEGER,
                    "iid": INTEGER,
                    "project_id": INTEGER,
                    "sha": STRING,
                    "ref": STRING,
                    "status": STRING,
                    "source": STRING,
                    "created_at": DATE_TIME,
                    "updated_at": DATE_TIME,
                    "web_url": STRING,
                }
            )
        ),
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
        "target_branch": STRING,
        "status": STRING,  # idle, stale, fresh, merging, merged, skip_merged
        "merged_at": nullable(DATE_TIME),
        "duration": nullable(INTEGER),
    }
)

OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        PROJECT + "/merge_trains/merge_requests/{merge_request_iid:int}",
        {},
        {
            "sha": STRING,
            "squash": BOOLEAN,
            "auto_merge": BOOLEAN,
            "when_pipeline_succeeds": BOOLEAN,  # deprecated for auto_merge
        },
        array(CAR),  # the train's cars after the add
        f"{DOCS}/merge_trains/#add-a-merge-request-to-a-merge-train",
    ),
    Operation(
        "GET",
        PROJECT + "/merge_trains/merge_requests/{merge_request_iid:int}",
        {},
        {},
        CAR,
        f"{DOCS}/merge_trains/#get-the-status-of-a-merge-request-on-a-merge-train",
    ),
    Operation(
        "GET",
        MR + "/reviewers",
        {},
        {},
        array(
            obj(
                {
                    "user": ref("BasicUser"),
                    "updated_state_by": nullable(ref("BasicUser")),
                    # unreviewed, review_started, reviewed, requested_changes, approved,
                    # unapproved
                    "state": STRING,
                    "created_at": DATE_TIME,
                }
            )
        ),
        f"{DOCS}/merge_requests/#get-single-merge-request-reviewers",
    ),
    Operation(
        "GET",
        "/api/v4/personal_access_tokens/self",
        {},
        {},
        ref("PersonalAccessToken"),
        f"{DOCS}/personal_access_tokens/#get-details-on-a-personal-access-token",
    ),
    Operation(
        "GET",
        "/api/v4/groups/{id}/members/all/{user_id:int}",
        {},
        {},
        ref("GroupMember"),
        f"{DOCS}/members/#get-a-member-of-a-group-or-project-including-inherited-and-invited-members",
    ),
]

# Answer fields newer than go-gitlab 0.73.1's structs, added to every answer of that struct.
FIELDS: dict[str, Mapping[str, Shape]] = {
    # mergeable, need_rebase, conflict, checking, unchecked, ci_must_pass, not_approved, …
    "MergeRequest": {"detailed_merge_status": STRING, "merge_user": nullable(ref("BasicUser"))},
    # only in the answers of an issue's links (relates_to, blocks, is_blocked_by)
    "Issue": {
        "link_type": STRING,
        "link_created_at": DATE_TIME,
        "link_updated_at": DATE_TIME,
    },
    "PersonalAccessToken": {"description": nullable(STRING), "last_used_ips": array(STRING)},
    # GitLab 15.3: the rule covers every protected branch, whatever protected_branches lists
    "ProjectApprovalRule": {"applies_to_all_protected_branches": BOOLEAN},
    # GitLab 15.6: a Merge Request Hook's too (as the merge request's answer has it)
    "MergeEvent.object_attributes": {"detailed_merge_status": STRING},
}
FIELD_SOURCES = {
    "MergeRequest": f"{DOCS}/merge_requests/#get-single-mr",
    "Issue": f"{DOCS}/issue_links/#list-issue-relations",
    "PersonalAccessToken": f"{DOCS}/personal_access_tokens/",
    "ProjectApprovalRule": f"{DOCS}/merge_request_approvals/",
    "MergeEvent.object_attributes": "https://docs.gitlab.com/user/project/integrations/"
    "webhook_events/#merge-request-events",
}

# For the docs: every operation and field that comes from here, with its page.
SUPPLEMENTED: list[tuple[str, str]] = [
    *((f"{op.method} {op.template}", op.source) for op in OPERATIONS),
    *(
        (f"{name}.{field}", FIELD_SOURCES[name])
        for name, fields in FIELDS.items()
        for field in fields
    ),
]
