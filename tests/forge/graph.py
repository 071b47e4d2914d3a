"""GitHub's own GraphQL schema (@octokit/graphql-schema, pinned by
tests/forge/package-lock.json), which the test forge's GraphQL endpoint executes against:
a query or mutation the schema does not have fails validation, and an answer is shaped by
the schema itself (graphql-core's executor), so neither side can drift from GitHub's."""

import functools
import json
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, build_client_schema, graphql_sync

FILE = Path(__file__).parent / "node_modules/@octokit/graphql-schema/schema.json"


@functools.cache
def schema() -> GraphQLSchema:
    found = json.loads(FILE.read_text())
    built = build_client_schema(found.get("data", found))
    # GitHub's published schema breaks a rule graphql-js added later (an implementation of
    # an interface field deprecates it where the interface does not): marked as checked,
    # so queries are still validated against it but the schema itself is taken as GitHub's.
    built._validation_errors = []
    return built


def execute(
    query: str, variables: dict[str, Any] | None, root: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The answer to `query` with `root`'s resolvers, and its problems (an invalid query's
    validation errors; a resolver's own errors are the forge's refusals, not problems)."""
    result = graphql_sync(schema(), query, root_value=root, variable_values=variables)
    answer: dict[str, Any] = {"data": result.data}
    problems = []
    if result.errors:
        answer["errors"] = [{"message": e.message, "type": "UNPROCESSABLE"}
                            for e in result.errors]  # fmt: skip
        if result.data is None:  # no execution: the query itself is not GitHub's
            problems = [f"GraphQL: {e.message}" for e in result.errors]
    return answer, problems
