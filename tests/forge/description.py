"""GitHub's own OpenAPI description (@octokit/openapi, pinned by tests/forge/package-lock.json)
as the contract the test forge and the product's GitHub client are both held to.

openapi-core checks types, required fields and enums; on top of it, `Description` is strict
where the description is open: a path, a query parameter or a field (in a request body or
an answer) that the description lacks is a problem, so neither side can drift from GitHub.

Any operation may also answer what GitHub documents for every endpoint ("Rate limits for
the REST API", "Troubleshooting"): 401 for bad credentials, 403 or 429 for a rate limit and
5xx, each a basic-error; and any GET a 304 to a conditional request ("Best practices for
using the REST API")."""

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

FILE = Path(__file__).parent / "node_modules/@octokit/openapi/generated/api.github.com.json"
SERVER = "https://api.github.com"
ANY_OPERATION = (401, 403, 429, 500, 502, 503)  # GitHub's documented answers to any request
# "Best practices for using the REST API" (conditional requests): any GET answers an ETag,
# and 304 to a request that sends it back unchanged, which is not counted against the rate
# limit; the description declares the 304 on some operations only.
ANY_GET = (304,)


def available() -> bool:
    return FILE.is_file()


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    params: dict[str, dict[str, Any]]  # query parameters by name


@functools.cache
def description() -> "Description":
    return Description(_nullable_enums(json.loads(FILE.read_text())))


def _nullable_enums(node: Any) -> Any:
    """`nullable: true` with an `enum` admits null, as GitHub answers (a check run's
    `conclusion` is null until it completes) and as octokit's own types read the
    description; OpenAPI 3.0.3's clarification would need null listed in the enum, which
    GitHub's description does not do."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
        for value in node.values():
            _nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_enums(value)
    return node


class Description:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.api = OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))
        routes = []
        for template in doc["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            routes.append((-literal, template, re.compile(f"^{pattern}$")))
        self.routes = [(t, r) for _, t, r in sorted(routes)]

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            found: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                found = found[part]
            node = found
        return node

    def operation(self, method: str, path: str) -> Operation | None:
        for template, pattern in self.routes:
            if pattern.match(path):
                item = self.doc["paths"][template]
                spec = item.get(method.lower())
                if spec is None:
                    continue
                params = {}
                for p in [*item.get("parameters", []), *spec.get("parameters", [])]:
                    p = self.resolve(p)
                    if p["in"] == "query":
                        params[p["name"]] = p
                return Operation(template, method.lower(), spec, params)
        return None

    # -- checks ------------------------------------------------------------------------

    def request_problems(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes | None,
        content_type: str,
    ) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in GitHub's description"]
        problems = [
            f"{method} {op.template}: query parameter {name!r} is not in the description"
            for name in query
            if name not in op.params
        ]
        request = MockRequest(
            SERVER,
            method.lower(),
            path,
            args={k: v[-1] for k, v in query.items()},
            data=body or None,
            content_type=content_type or "application/json",
        )
        try:
            self.api.validate_request(request)
        except Exception as exc:  # openapi-core's many error kinds: each is a problem
            problems.append(f"{method} {op.template}: {_said(exc)}")
        if body:
            schema = op.spec.get("requestBody") or {}
            schema = self.resolve(schema).get("content", {}).get("application/json", {})
            if schema.get("schema") is not None:
                problems += self.undeclared(
                    json.loads(body), schema["schema"], f"{method} {op.template} body"
                )
        return problems

    def response_problems(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        status: int,
        body: bytes,
        content_type: str,
    ) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: answered, but no such operation in the description"]
        declared = op.spec.get("responses", {})
        where = f"{method} {op.template} → {status}"
        if str(status) not in declared and not (method == "GET" and status in ANY_GET):
            if status not in ANY_OPERATION:
                return [f"{where}: the description declares no such answer"]
            return self._basic_error(body, where)
        content = self.resolve(declared.get(str(status), {})).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if status == 304 or (not body and schema is None):
            return []
        if not body:
            return [f"{where}: no body, where the description declares one"]
        request = MockRequest(
            SERVER, method.lower(), path, args={k: v[-1] for k, v in query.items()}
        )
        problems = []
        try:
            self.api.validate_response(
                request, MockResponse(body, status_code=status, content_type=content_type)
            )
        except Exception as exc:
            problems.append(f"{where}: {_said(exc)}")
        if schema is not None:
            problems += self.undeclared(json.loads(body), schema, where)
        return problems

    def _basic_error(self, body: bytes, where: str) -> list[str]:
        schema = self.doc["components"]["schemas"]["basic-error"]
        found = json.loads(body) if body else {}
        problems = self.undeclared(found, schema, where)
        if not isinstance(found.get("message"), str):
            problems.append(f"{where}: a basic-error needs its message")
        return problems

    def undeclared(self, value: Any, schema: Any, where: str) -> list[str]:
        """Fields of `value` that `schema` does not declare (where it does not allow more).
        Of a oneOf or anyOf, the alternative that declares the most of it counts."""
        found: list[str] | None = None
        for variant in self._variants(schema):
            problems = self._undeclared_in(value, variant, where)
            if found is None or len(problems) < len(found):
                found = problems
            if not found:
                break
        return found or []

    def _undeclared_in(self, value: Any, schemas: list[dict[str, Any]], where: str) -> list[str]:
        if isinstance(value, dict):
            props: dict[str, Any] = {}
            free = False
            for s in schemas:
                props.update(s.get("properties", {}))
                more = s.get("additionalProperties")
                free = (
                    free
                    or more not in (None, False)
                    or (
                        "properties" not in s
                        and s.get("type") in ("object", None)
                        and not any(k in s for k in ("allOf", "anyOf", "oneOf"))
                    )
                )
            problems = []
            for key, item in value.items():
                if key in props:
                    problems += self.undeclared(item, props[key], f"{where}.{key}")
                elif not free:
                    problems.append(f"{where}: field {key!r} is not in the description")
            return problems
        if isinstance(value, list):
            items = [s["items"] for s in schemas if "items" in s]
            return [
                p
                for n, item in enumerate(value)
                for s in items
                for p in self.undeclared(item, s, f"{where}[{n}]")
            ][:20]
        return []

    def _variants(self, schema: Any) -> list[list[dict[str, Any]]]:
        """`schema` as its alternatives, each the list of schemas (allOf) it must meet."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return [[]]
        found: list[list[dict[str, Any]]] = [[schema]]
        for part in schema.get("allOf", []):
            found = [a + b for a in found for b in self._variants(part)]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                alts = [v for part in schema[key] for v in self._variants(part)]
                found = [a + b for a in found for b in alts]
        return found[:64]


def _said(exc: BaseException) -> str:
    cause = exc.__cause__
    text = f"{type(exc).__name__}: {exc}" + (f" ({cause})" if cause else "")
    return text[:600]


def minimal(schema: Any, doc: "Description | None" = None) -> Any:
    """The smallest value `schema` accepts: every required field, each at its simplest (a
    nullable one None). The forge builds its answers from these, so each is GitHub's shape
    however many fields GitHub requires, and sets only what it means."""
    doc = doc or description()
    schema = doc.resolve(schema)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            found = minimal(part, doc)
            if isinstance(found, dict):
                merged.update(found)
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return minimal(schema[key][0], doc)
    if schema.get("nullable"):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {
            name: minimal(props[name], doc) for name in schema.get("required", []) if name in props
        }
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "string":
        return {
            "date-time": "2026-01-01T00:00:00Z",
            "uri": "https://example.invalid/",
            "email": "x@example.invalid",
            "uri-template": "https://example.invalid/",
        }.get(schema.get("format", ""), "x")
    return None


def schema_of(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}
