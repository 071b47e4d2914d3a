"""The contract the test GitLab and the product's GitLab client are both held to.

It is GitLab's REST API as go-gitlab describes it, plus a small supplement. GitLab's own
OpenAPI file is in no package installable here; go-gitlab, GitLab's official Go
client (Debian's golang-github-xanzy-go-gitlab-dev 0.73.1), is: gosource.py reads its
operations and types, supplement.py adds what the queue needs that 0.73.1 predates, each
written from GitLab's doc page it names. Like tests/forge/description.py for GitHub, the
check is strict where the description is open: an undeclared path, query parameter, body
field or answer field is a violation, so neither side can drift from GitLab. go-gitlab marks
no field required, so a missing field is not one. Null is accepted in any field: go-gitlab's
pointers say where it expects null, but GitLab's own examples send null in fields it types
as plain strings and booleans (merge_commit_sha, discussion_locked), which Go's decoder
takes as the zero value.

Errors (4xx, 5xx) are GitLab's error bodies ("REST API troubleshooting": `message` as text,
object or list, or OAuth's `error`), except a 429 from the user and IP rate limits, whose body
is plain text (RATE_LIMIT_TEXT); GitLab's REST API documents no 304 for these reads.
"""

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.forge.gitlab import gosource, supplement
from tests.forge.gitlab.shapes import Operation, Shape

MAX_PROBLEMS = 20  # per list: enough to fix the first, short enough to read

# event_parsing.go's ParseWebhook: the X-Gitlab-Event header names the payload's struct; a
# note's struct follows what it is on.
WEBHOOKS = {
    "Merge Request Hook": "MergeEvent",
    "Issue Hook": "IssueEvent",
    "Confidential Issue Hook": "IssueEvent",
    "Pipeline Hook": "PipelineEvent",
    "Job Hook": "JobEvent",
    "Build Hook": "BuildEvent",
    "Push Hook": "PushEvent",
    "Tag Push Hook": "TagEvent",
    "Deployment Hook": "DeploymentEvent",
    "Release Hook": "ReleaseEvent",
}
NOTES = {
    "Issue": "IssueCommentEvent",
    "MergeRequest": "MergeCommentEvent",
    "Commit": "CommitCommentEvent",
    "Snippet": "SnippetCommentEvent",
}
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
QUERY_BOOL = {"true", "false", "1", "0"}  # Grape's Boolean coercion, any case
QUERY_INT = re.compile(r"^-?\d+$")
BODY_METHODS = ("POST", "PUT", "PATCH")
RATE_LIMIT_TEXT = (
    "https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/#response-text"
)


@dataclass(frozen=True)
class Route:
    operation: Operation
    pattern: re.Pattern[str]
    literal: int  # literal segments: the most specific template wins


# GitLab's documented examples that go-gitlab ships (testdata/): keys they show that
# go-gitlab's structs lack are declared too, typed by the example, and listed in
# `Description.widened`. (webhooks/group_merge_request.json is left out: its keys end in
# spaces, which no GitLab sends and Go's decoder silently drops.)
EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("get_merge_request.json", "GET", "/api/v4/projects/1/merge_requests/1"),
    ("get_merge_requests.json", "GET", "/api/v4/projects/1/merge_requests"),
    ("get_user.json", "GET", "/api/v4/users/1"),
    ("search_users.json", "GET", "/api/v4/users"),
    ("get_branch.json", "GET", "/api/v4/projects/1/repository/branches/main"),
    ("list_branches.json", "GET", "/api/v4/projects/1/repository/branches"),
    ("get_commit.json", "GET", "/api/v4/projects/1/repository/commits/abc"),
    ("issue_move.json", "POST", "/api/v4/projects/1/issues/1/move"),
    ("list_todos.json", "GET", "/api/v4/todos"),
    ("get_signature.json", "GET", "/api/v4/projects/1/repository/commits/abc/signature"),
    ("get_project_access_token.json", "GET", "/api/v4/projects/1/access_tokens/1"),
    (
        "list_personal_access_tokens_without_user_filter.json",
        "GET",
        "/api/v4/personal_access_tokens",
    ),
)
WEBHOOK_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("webhooks/merge_request.json", "Merge Request Hook"),
    ("webhooks/issue.json", "Issue Hook"),
    ("webhooks/note_issue.json", "Note Hook"),
    ("webhooks/note_merge_request.json", "Note Hook"),
    ("webhooks/note_commit.json", "Note Hook"),
    ("webhooks/note_snippet.json", "Note Hook"),
    ("webhooks/pipeline.json", "Pipeline Hook"),
    ("webhooks/build.json", "Job Hook"),
    ("webhooks/push.json", "Push Hook"),
    ("webhooks/tag_push.json", "Tag Push Hook"),
    ("webhooks/deployment.json", "Deployment Hook"),
    ("webhooks/release.json", "Release Hook"),
)


def available() -> bool:
    return gosource.ROOT.is_dir()


@functools.cache
def load() -> "Description":
    if not available():
        raise FileNotFoundError(f"no go-gitlab at {gosource.ROOT} (scripts/setup installs it)")
    return Description(gosource.parse())


class Description:
    def __init__(self, source: gosource.Source) -> None:
        self.source = source
        self.structs: dict[str, Shape] = {}
        self.extra: dict[str, dict[str, Shape]] = {}  # struct -> fields the examples add
        self.widened: list[str] = []  # "Struct.field (example file)", for the docs
        merged: dict[tuple[str, str], Operation] = {}
        for op in [*source.operations, *supplement.OPERATIONS]:
            key = (op.method, _pattern(op.template).pattern)  # {mr} and {mergeRequest} alike
            merged[key] = _merge(merged[key], op) if key in merged else op
        self.operations = list(merged.values())
        routes = [Route(op, _pattern(op.template), _literal(op.template)) for op in merged.values()]
        self.routes = sorted(routes, key=lambda r: -r.literal)
        testdata = gosource.ROOT / "testdata"
        for name, method, path in EXAMPLES:
            read = self.operation(method, path)
            assert read is not None and read.answer is not None, name
            self._widen(json.loads((testdata / name).read_text()), read.answer, name)
        for name, event in WEBHOOK_EXAMPLES:
            payload = json.loads((testdata / name).read_text())
            self._widen(payload, Shape("ref", ref=self._webhook_struct(event, payload)), name)
        self.structs.clear()

    # -- lookup --------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        path = path.split("?", 1)[0]
        for route in self.routes:
            if route.operation.method == method.upper() and route.pattern.match(path):
                return route.operation
        return None

    def struct(self, name: str) -> Shape:
        """Struct `name`'s fields: go-gitlab's, the supplement's, its examples'."""
        if name not in self.structs:
            shape = self.source.struct(name)
            fields = {**shape.fields, **supplement.FIELDS.get(name, {})}
            self.structs[name] = Shape("object", fields={**fields, **self.extra.get(name, {})})
        return self.structs[name]

    def _widen(self, value: Any, shape: Shape, origin: str) -> None:
        if shape.kind == "ref" and isinstance(value, dict):
            fields = self.struct(shape.ref).fields
            for key, item in value.items():
                if key in fields:
                    self._widen(item, fields[key], origin)
                else:
                    self.extra.setdefault(shape.ref, {})[key] = _infer(item)
                    self.structs.pop(shape.ref, None)
                    self.widened.append(f"{shape.ref}.{key} ({origin})")
        elif shape.kind == "array" and isinstance(value, list) and shape.of is not None:
            for item in value:
                self._widen(item, shape.of, origin)
        elif shape.kind == "map" and isinstance(value, dict) and shape.of is not None:
            for item in value.values():
                self._widen(item, shape.of, origin)
        elif shape.kind == "oneof":
            for alt in shape.alts:
                if alt.kind in ("ref", "map") and isinstance(value, dict):
                    self._widen(value, alt, origin)
                    return
                if alt.kind == "array" and isinstance(value, list):
                    self._widen(value, alt, origin)
                    return

    # -- the checks -----------------------------------------------------------------------

    def request(
        self, method: str, path: str, query: Mapping[str, list[str]], body: Any
    ) -> list[str]:
        """What is wrong with a request to the test GitLab; empty when it is GitLab's."""
        method = method.upper()
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in go-gitlab or the supplement"]
        where = f"{method} {op.template}"
        problems = []
        for name, values in query.items():
            if name not in op.query:
                problems.append(f"{where}: query parameter {name!r} is not declared")
                continue
            problems += self._query_value(op.query[name], values, f"{where}: query {name!r}")
        if isinstance(body, (bytes, str)):
            if not body.strip():
                body = None
            else:
                try:
                    body = json.loads(body)
                except ValueError:
                    return [*problems, f"{where}: the body is not JSON"]
        if body is None or (body == {} and method not in BODY_METHODS):
            return problems[:MAX_PROBLEMS]
        if method not in BODY_METHODS:
            return [*problems, f"{where}: a {method} carries no body"][:MAX_PROBLEMS]
        if not isinstance(body, dict):
            return [*problems, f"{where}: the body is {_kind(body)}, not a JSON object"]
        for key, value in body.items():
            if key not in op.body:
                problems.append(f"{where}: body field {key!r} is not declared")
            else:
                problems += self.check(value, op.body[key], f"{where} body.{key}")
        return problems[:MAX_PROBLEMS]

    def answer(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """What is wrong with the test GitLab's answer; `body` parsed JSON, text or bytes."""
        method = method.upper()
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: answered, but no such operation is declared"]
        where = f"{method} {op.template} → {status}"
        if status == 304:
            return [f"{where}: GitLab's REST API documents no 304 (no conditional requests)"]
        if status == 429 and isinstance(body, (bytes, str)) and body.strip() and not _json(body):
            return []  # the throttle's text (RATE_LIMIT_TEXT): "Retry later" or an admin's words
        if status >= 400:
            return self._error(body, where)
        if not 200 <= status < 300:
            return [f"{where}: GitLab answers this operation with no {status}"]
        empty = body is None or (isinstance(body, (bytes, str)) and not body.strip())
        if op.answer is None:
            return [] if empty else [f"{where}: a body, where the description reads none"]
        if op.answer.kind == "raw":
            if isinstance(body, (bytes, str)):
                return []
            return [f"{where}: a {_kind(body)}, where the answer is text"]
        if empty:
            return [f"{where}: no body, where the description declares one"]
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body)
            except ValueError:
                return [f"{where}: the body is not JSON"]
        return self.check(body, op.answer, where)[:MAX_PROBLEMS]

    def webhook(self, event: str, payload: Any) -> list[str]:
        """What is wrong with a delivery the test GitLab sends with `X-Gitlab-Event: event`."""
        if isinstance(payload, (bytes, str)):
            try:
                payload = json.loads(payload)
            except ValueError:
                return [f"{event}: the payload is not JSON"]
        if not isinstance(payload, dict):
            return [f"{event}: the payload is {_kind(payload)}, not a JSON object"]
        name = self._webhook_struct(event, payload)
        if not name:
            return [f"{event}: no such X-Gitlab-Event (or note) in go-gitlab's webhook types"]
        return self.check(payload, Shape("ref", ref=name), event)[:MAX_PROBLEMS]

    def _webhook_struct(self, event: str, payload: dict[str, Any]) -> str:
        if event in ("Note Hook", "Confidential Note Hook"):
            if payload.get("object_kind") != "note":
                return ""
            noteable = (payload.get("object_attributes") or {}).get("noteable_type")
            return NOTES.get(noteable, "") if isinstance(noteable, str) else ""
        return WEBHOOKS.get(event, "")

    # -- shapes ---------------------------------------------------------------------------

    def check(self, value: Any, shape: Shape, where: str) -> list[str]:
        """Where `value` departs from `shape`: a wrong JSON type, an undeclared field."""
        if value is None:
            return []  # Go decodes null into any field (see the module's docstring)
        kind = shape.kind
        if kind == "any":
            return []
        if kind == "ref":
            return self._object(value, self.struct(shape.ref), where, shape.ref)
        if kind == "object":
            return self._object(value, shape, where, "")
        if kind == "oneof":
            best: list[str] | None = None
            for alt in shape.alts:
                found = self.check(value, alt, where)
                if not found:
                    return []
                if best is None or len(found) < len(best):
                    best = found
            return best or []
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: {_kind(value)}, where the description has a list"]
            assert shape.of is not None
            found = []
            for n, item in enumerate(value):
                found += self.check(item, shape.of, f"{where}[{n}]")
                if len(found) >= MAX_PROBLEMS:
                    break
            return found
        if kind == "map":
            if not isinstance(value, dict):
                return [f"{where}: {_kind(value)}, where the description has an object"]
            assert shape.of is not None
            return [p for k, v in value.items() for p in self.check(v, shape.of, f"{where}.{k}")]
        return _scalar(value, shape, where)

    def _object(self, value: Any, shape: Shape, where: str, name: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: {_kind(value)}, where the description has an object"]
        found = []
        for key, item in value.items():
            if key not in shape.fields:
                of = f"go-gitlab's {name}" if name else "the description"
                found.append(f"{where}: field {key!r} is not in {of}")
            else:
                found += self.check(item, shape.fields[key], f"{where}.{key}")
        return found

    def _query_value(self, shape: Shape, values: list[str], where: str) -> list[str]:
        if shape.kind == "array":
            assert shape.of is not None
            return [p for v in values for p in self._query_value(shape.of, [v], where)]
        if len(values) != 1:
            return [f"{where}: given {len(values)} times, where it takes one value"]
        value = values[0]
        kinds = shape.alts if shape.kind == "oneof" else (shape,)
        for s in kinds:
            if s.kind in ("string", "any") and (s.format != "date-time" or DATE_TIME.match(value)):
                return []
            if s.kind == "integer" and QUERY_INT.match(value):
                return []
            if s.kind == "boolean" and value.lower() in QUERY_BOOL:
                return []
            if s.kind == "number" and re.match(r"^-?\d+(\.\d+)?$", value):
                return []
        return [f"{where}: {value!r} is not {_name(shape)}"]

    def _error(self, body: Any, where: str) -> list[str]:
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body) if body.strip() else None
            except ValueError:
                return [f"{where}: an error body that is not JSON"]
        if not isinstance(body, dict):
            return [f"{where}: an error is a JSON object with message or error, not {_kind(body)}"]
        if "message" in body:
            extra = set(body) - {"message"}
            ok = isinstance(body["message"], (str, dict, list))
            said = [] if ok else [f"{where}: message is {_kind(body['message'])}"]
        elif "error" in body:
            extra = set(body) - {"error", "error_description", "scope"}
            ok = isinstance(body["error"], str) and all(
                isinstance(body[k], str) for k in ("error_description", "scope") if k in body
            )
            said = [] if ok else [f"{where}: OAuth's error fields are text"]
        else:
            return [f"{where}: an error needs message or error, got {sorted(body)}"]
        return said + [f"{where}: field {k!r} is not in GitLab's error body" for k in sorted(extra)]


def _merge(a: Operation, b: Operation) -> Operation:
    """Two methods of go-gitlab on one route (ListGroups and SearchGroup): either's params."""
    answer = a.answer
    if a.answer != b.answer and a.answer is not None and b.answer is not None:
        answer = Shape("oneof", alts=(a.answer, b.answer))
    return Operation(
        a.method,
        a.template,
        {**a.query, **b.query},
        {**a.body, **b.body},
        answer if answer is not None else b.answer,
        f"{a.source}; {b.source}",
    )


def _json(body: bytes | str) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _infer(value: Any) -> Shape:
    """The shape an example's value shows (null shows nothing, so any)."""
    if isinstance(value, bool):
        return Shape("boolean")
    if isinstance(value, int):
        return Shape("integer")
    if isinstance(value, float):
        return Shape("number")
    if isinstance(value, str):
        return Shape("string")
    if isinstance(value, list):
        return Shape("array", nullable=True, of=_infer(value[0]) if value else Shape("any"))
    if isinstance(value, dict):
        return Shape("object", fields={k: _infer(v) for k, v in value.items()})
    return Shape("any")


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    out = []
    for part in parts:
        if part.startswith("{"):
            out.append("[0-9]+" if part.endswith(":int}") else "[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


def _literal(template: str) -> int:
    return sum(1 for seg in template.split("/") if seg and "{" not in seg)


def _scalar(value: Any, shape: Shape, where: str) -> list[str]:
    kind = shape.kind
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }.get(kind, False)
    if not ok:
        return [f"{where}: {_kind(value)} {value!r:.60}, where the description has {_name(shape)}"]
    if kind == "string" and shape.format == "date-time" and not DATE_TIME.match(value):
        return [f"{where}: {value!r} is not an RFC 3339 date-time"]
    if kind == "string" and shape.format == "date" and not DATE.match(value):
        return [f"{where}: {value!r} is not a date (YYYY-MM-DD)"]
    return []


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _name(shape: Shape) -> str:
    if shape.kind == "ref":
        return shape.ref
    if shape.kind == "oneof":
        return " or ".join(_name(a) for a in shape.alts)
    if shape.kind == "array":
        return f"a list of {_name(shape.of) if shape.of else 'any'}"
    return shape.format or shape.kind
