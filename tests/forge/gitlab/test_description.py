"""The test GitLab's contract: go-gitlab's description of GitLab's API, plus the supplement."""

import copy
import json
from typing import Any

import pytest

from tests.forge.gitlab import gosource, supplement
from tests.forge.gitlab.description import (
    EXAMPLES,
    WEBHOOK_EXAMPLES,
    Description,
    available,
    load,
)

pytestmark = pytest.mark.skipif(
    not available(), reason="no go-gitlab (scripts/setup: golang-github-xanzy-go-gitlab-dev)"
)

TESTDATA = gosource.ROOT / "testdata"
P = "/api/v4/projects/group%2Fsub%2Fproject"
MR = P + "/merge_requests/7"
NONE: dict[str, list[str]] = {}

# Every call of plan72.md §3.1, as the GitLab client will make it: (method, path, query, body).
PLAN: list[tuple[str, str, dict[str, list[str]], Any]] = [
    ("GET", P, NONE, None),
    ("GET", P + "/protected_branches/main", NONE, None),
    ("GET", P + "/approval_rules", NONE, None),
    (
        "GET",
        P + "/merge_requests",
        {
            "source_branch": ["wvo/t1"],
            "target_branch": ["main"],
            "state": ["all"],
            "order_by": ["created_at"],
            "sort": ["desc"],
            "per_page": ["1"],
        },
        None,
    ),
    (
        "POST",
        P + "/merge_requests",
        NONE,
        {
            "source_branch": "wvo/t1",
            "target_branch": "main",
            "title": "t1",
            "description": "body",
            "remove_source_branch": False,
        },
    ),
    ("PUT", MR, NONE, {"title": "t1", "description": "body"}),
    ("GET", MR, NONE, None),
    (
        "GET",
        P + "/pipelines",
        {"sha": ["a" * 40], "order_by": ["id"], "sort": ["desc"], "per_page": ["1"]},
        None,
    ),
    ("GET", P + "/pipelines/12/jobs", {"scope[]": ["failed"]}, None),
    ("GET", P + "/jobs/34/trace", NONE, None),
    ("GET", P + "/repository/commits/" + "a" * 40 + "/statuses", NONE, None),
    ("GET", MR + "/approvals", NONE, None),
    ("GET", MR + "/reviewers", NONE, None),
    ("GET", MR + "/discussions", {"per_page": ["100"], "page": ["1"]}, None),
    (
        "PUT",
        MR + "/merge",
        NONE,
        {
            "sha": "a" * 40,
            "squash": True,
            "merge_commit_message": "m",
            "squash_commit_message": "s",
        },
    ),
    ("POST", P + "/merge_trains/merge_requests/7", NONE, {"sha": "a" * 40, "auto_merge": True}),
    ("GET", P + "/merge_trains/merge_requests/7", NONE, None),
    ("POST", P + "/issues/3/notes", NONE, {"body": "a question"}),
    ("POST", MR + "/notes", NONE, {"body": "returned"}),
    ("GET", "/api/v4/users", {"username": ["alice"]}, None),
    ("GET", P + "/members/all/5", NONE, None),
    ("GET", "/api/v4/groups/team%2Fsub/members/all/5", NONE, None),
    ("GET", P + "/repository/merge_base", {"refs[]": ["a" * 40, "b" * 40]}, None),
    ("GET", P + "/issues/3", NONE, None),
    (
        "GET",
        P + "/issues",
        {
            "labels": ["wvo"],
            "state": ["all"],
            "per_page": ["100"],
            "page": ["2"],
            "updated_after": ["2026-01-01T00:00:00Z"],
        },
        None,
    ),
    ("GET", P + "/issues/3/links", NONE, None),
    ("GET", P + "/issues/3/resource_label_events", NONE, None),
    ("GET", P + "/issues/3/notes", {"sort": ["asc"], "order_by": ["created_at"]}, None),
    ("PUT", P + "/issues/3", NONE, {"state_event": "close"}),
    ("PUT", P + "/issues/3", NONE, {"add_labels": "wvo-landed"}),
    ("GET", "/api/v4/personal_access_tokens/self", NONE, None),
]


@pytest.fixture(scope="module")
def gl() -> Description:
    return load()


def example(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text())


def test_go_gitlab_is_read_whole(gl: Description) -> None:
    calls = sum(
        p.read_text().count(".client.NewRequest(")
        for p in gosource.ROOT.glob("*.go")
        if not p.name.endswith("_test.go")
    )
    assert calls > 700
    assert len(gl.source.operations) == calls  # every request go-gitlab makes, none dropped
    # Only multipart uploads are beyond the parse, and none of them is the queue's.
    assert all("multipart" in s for s in gl.source.skipped), gl.source.skipped
    op = gl.operation("PUT", MR + "/merge")
    assert op is not None and op.source.endswith("AcceptMergeRequest")
    assert set(op.body) >= {"sha", "squash", "merge_commit_message", "squash_commit_message"}


@pytest.mark.parametrize(("name", "method", "path"), EXAMPLES)
def test_go_gitlab_s_rest_examples_meet_their_types(
    gl: Description, name: str, method: str, path: str
) -> None:
    assert gl.answer(method, path, 200, example(name)) == []


@pytest.mark.parametrize(("name", "event"), WEBHOOK_EXAMPLES)
def test_go_gitlab_s_webhook_examples_meet_their_types(
    gl: Description, name: str, event: str
) -> None:
    assert gl.webhook(event, (TESTDATA / name).read_bytes()) == []


def test_an_answer_with_a_field_go_gitlab_lacks_is_refused(gl: Description) -> None:
    body = example("get_merge_request.json")
    body["merged_via"] = "hand"
    body["author"]["karma"] = 3
    found = gl.answer("GET", MR, 200, body)
    assert any("'merged_via'" in p and "MergeRequest" in p for p in found), found
    assert any(".author: field 'karma'" in p for p in found), found


def test_an_answer_of_the_wrong_type_is_refused_by_field(gl: Description) -> None:
    body = example("get_merge_request.json")
    body["iid"] = "1"
    body["draft"] = "no"
    body["diff_refs"]["head_sha"] = 7
    body["created_at"] = "yesterday"
    found = gl.answer("GET", MR, 200, body)
    assert any(p.endswith(".iid: a string '1', where the description has integer") for p in found)
    assert any(".draft:" in p for p in found), found
    assert any(".diff_refs.head_sha:" in p for p in found), found
    assert any(".created_at: 'yesterday' is not an RFC 3339 date-time" in p for p in found)


def test_a_list_for_an_object_and_an_object_for_a_list_are_refused(gl: Description) -> None:
    one = example("get_merge_request.json")
    many = example("get_merge_requests.json")
    assert gl.answer("GET", MR, 200, many) == [
        "GET /api/v4/projects/{project}/merge_requests/{mergeRequest:int} → 200: "
        "a list, where the description has an object"
    ]
    listed = gl.answer("GET", P + "/merge_requests", 200, one)
    assert "where the description has a list" in listed[0]
    one["author"] = [one["author"]]
    assert any(".author: a list" in p for p in gl.answer("GET", MR, 200, one))


def test_a_field_learnt_from_an_example_keeps_its_type(gl: Description) -> None:
    """Keys GitLab's examples show beyond go-gitlab's struct are declared with their type."""
    assert "Milestone.group_id (get_merge_request.json)" in gl.widened
    body = example("get_merge_request.json")
    body["milestone"]["group_id"] = "seven"
    assert any(".milestone.group_id: a string" in p for p in gl.answer("GET", MR, 200, body))


def test_a_mutated_webhook_is_refused_by_field(gl: Description) -> None:
    payload = example("webhooks/merge_request.json")
    bad = copy.deepcopy(payload)
    bad["object_attributes"]["merge_commit"] = "x"
    bad["object_attributes"]["iid"] = "1"
    bad["user"] = [bad["user"]]
    found = gl.webhook("Merge Request Hook", bad)
    assert any(".object_attributes: field 'merge_commit'" in p for p in found), found
    assert any(".object_attributes.iid: a string" in p for p in found), found
    assert any("Merge Request Hook.user: a list" in p for p in found), found
    note = example("webhooks/note_issue.json")
    note["object_attributes"]["noteable_type"] = "Epic"
    assert gl.webhook("Note Hook", note) != []
    assert gl.webhook("Wiki Hook", payload) != []
    assert gl.webhook("Merge Request Hook", [payload]) != []


def test_a_request_with_an_undeclared_parameter_or_field_is_refused(gl: Description) -> None:
    assert gl.request("GET", P + "/merge_requests", {"head": ["x"]}, None) == [
        "GET /api/v4/projects/{project}/merge_requests: query parameter 'head' is not declared"
    ]
    found = gl.request("PUT", MR + "/merge", NONE, {"sha": "a", "expected_head_oid": "a"})
    assert found == [
        "PUT /api/v4/projects/{project}/merge_requests/{mergeRequest:int}/merge: "
        "body field 'expected_head_oid' is not declared"
    ]
    # A PUT's fields go in its body: python-gitlab's mr.merge(sha=…) puts sha in the query.
    assert gl.request("PUT", MR + "/merge", {"sha": ["a"]}, None) != []
    assert gl.request("POST", P + "/issues/3/notes", NONE, {"body": 5}) != []
    assert gl.request("POST", P + "/issues/3/notes", NONE, b"not json") != []
    assert gl.request("GET", P + "/merge_requests", {"per_page": ["ten"]}, None) != []
    assert gl.request("GET", P + "/merge_requests", {"state": ["all", "opened"]}, None) != []


@pytest.mark.parametrize(("method", "path", "query", "body"), PLAN)
def test_every_call_the_plan_makes_is_declared(
    gl: Description, method: str, path: str, query: dict[str, list[str]], body: Any
) -> None:
    assert gl.operation(method, path) is not None, f"{method} {path}"
    assert gl.request(method, path, query, body) == []


def test_the_supplement_adds_only_what_go_gitlab_lacks(gl: Description) -> None:
    parsed = Description.__new__(Description)
    parsed.routes = [r for r in gl.routes if r.operation.source.startswith("go-gitlab")]
    for op in supplement.OPERATIONS:
        assert op.source.startswith("https://docs.gitlab.com/api/"), op
        concrete = op.template.replace("{id}", "g%2Fp")
        concrete = concrete.replace("{merge_request_iid:int}", "1")
        concrete = concrete.replace("{user_id:int}", "1")
        assert Description.operation(parsed, op.method, concrete) is None, op.template
        assert (f"{op.method} {op.template}", op.source) in supplement.SUPPLEMENTED
    for name, fields in supplement.FIELDS.items():
        assert not set(fields) & set(gl.source.struct(name).fields), name
    assert ("MergeRequest.detailed_merge_status", supplement.FIELD_SOURCES["MergeRequest"]) in (
        supplement.SUPPLEMENTED
    )


def test_a_supplemented_answer_is_held_to_its_shape(gl: Description) -> None:
    car = {
        "id": 1,
        "merge_request": {"id": 2, "iid": 7, "project_id": 3, "title": "t", "state": "opened"},
        "user": {"id": 5, "username": "wvo"},
        "pipeline": None,
        "created_at": "2026-01-01T00:00:00Z",
        "status": "fresh",
    }
    train = P + "/merge_trains/merge_requests/7"
    assert gl.answer("GET", train, 200, car) == []
    assert gl.answer("POST", train, 201, [car]) == []
    assert gl.answer("GET", train, 200, {**car, "position": 1}) != []
    reviewers = [{"user": {"id": 5, "username": "r"}, "state": "requested_changes"}]
    assert gl.answer("GET", MR + "/reviewers", 200, reviewers) == []
    mr = example("get_merge_request.json")
    assert gl.answer("GET", MR, 200, {**mr, "detailed_merge_status": "mergeable"}) == []
    assert gl.answer("GET", MR, 200, {**mr, "detailed_merge_status": 1}) != []


def test_an_unknown_path_or_method_is_refused(gl: Description) -> None:
    for method, path in [
        ("GET", "/api/v4/nowhere"),
        ("GET", "/api/v3/projects/1"),
        ("PATCH", MR),
        ("GET", P + "/merge_requests/seven"),  # an iid is a number (%d)
        ("GET", "/api/v4/projects/group/sub/project/merge_requests/7"),  # the path unescaped
    ]:
        assert gl.operation(method, path) is None, path
        assert gl.request(method, path, NONE, None) != []
        assert gl.answer(method, path, 200, {}) != []


def test_errors_are_gitlab_s_error_bodies(gl: Description) -> None:
    assert gl.answer("GET", MR, 404, {"message": "404 Not found"}) == []
    assert gl.answer("POST", P + "/merge_requests", 400, {"message": {"title": ["blank"]}}) == []
    assert gl.answer("PUT", MR + "/merge", 405, b'{"message": "405 Method Not Allowed"}') == []
    assert gl.answer("GET", MR, 403, {"error": "insufficient_scope", "scope": "api"}) == []
    assert gl.answer("GET", MR, 500, {"msg": "x"}) != []
    assert gl.answer("GET", MR, 409, {"message": "x", "documentation_url": "y"}) != []
    assert gl.answer("GET", MR, 304, b"") != []  # no conditional requests on GitLab's REST


def test_a_rate_limited_answer_is_the_throttle_s_plain_text(gl: Description) -> None:
    """GitLab's user and IP rate limits answer 429 in plain text ("Retry later" by default);
    any other error in text, or an empty 429, is still refused."""
    assert gl.answer("GET", MR, 429, b"Retry later\n") == []
    assert gl.answer("GET", MR, 429, {"message": "429 Too Many Requests"}) == []
    assert gl.answer("GET", MR, 429, {"retry": 5}) != []
    assert gl.answer("GET", MR, 429, b"") != []
    assert gl.answer("GET", MR, 500, b"Retry later") != []
    assert gl.answer("GET", MR, 403, b"Forbidden") != []


def test_an_untagged_go_field_is_its_name_as_gitlab_sends_it(gl: Description) -> None:
    """encoding/json: an exported field without a json tag has its Go name, matched without
    regard to case (GitLab sends `user`); `-` is never in JSON; `,omitempty` keeps the name."""
    fields = gosource.parse_fields(
        "\tUser *BasicUser\n"
        '\tHidden string `json:"-"`\n'
        '\tDash string `json:"-,"`\n'
        '\tKept string `json:",omitempty"`\n'
        '\tNamed string `json:"named_key"`\n'
        "\tsecret string\n"
    )
    assert [(f.name, f.json) for f in fields] == [
        ("User", "user"),
        ("Hidden", None),
        ("Dash", "-"),
        ("Kept", "kept"),
        ("Named", "named_key"),
    ]
    approvals = {"approved_by": [{"user": {"id": 5, "username": "lead"}}]}
    assert gl.answer("GET", MR + "/approvals", 200, approvals) == []
    approvals = {"approved_by": [{"approver": {"id": 5, "username": "lead"}}]}
    assert gl.answer("GET", MR + "/approvals", 200, approvals) != []


def test_text_answers_and_empty_answers(gl: Description) -> None:
    assert gl.answer("GET", P + "/jobs/34/trace", 200, b"$ sh check.sh\nfailed\n") == []
    assert gl.answer("GET", P + "/jobs/34/trace", 200, {"trace": "x"}) != []
    assert gl.answer("GET", MR, 200, b"") != []
    assert gl.answer("DELETE", MR, 204, b"") == []
    assert gl.answer("DELETE", MR, 204, {"deleted": True}) != []
