"""Which tools an agent sees, and their input schemas as lean as validation allows (pure).

Every tool's name, description and input schema go into the model's context on every turn,
so a worker sees only the loop, and the schemas lose what only costs tokens: pydantic's
`title` keys, `minLength: 1`, ids' patterns and lengths, defaults of false, "", [] and {},
and the `anyOf [X, null]` + `default: null` of optional parameters (omitting one is how an
agent says "none"). The server's own validation is unchanged: it still refuses an empty
string or a malformed id (saying what is accepted) and accepts null.
"""

from collections.abc import Iterable
from typing import Any

from wvo_mcp.errors import ValidationFailed

LOOP = (
    "plan_next",
    "claim_task",
    "heartbeat",
    "checkpoint",
    "plan_update",
    "ask_person",
    "context_read",
    "context_write",
    "task_get",
)
# Loaded up front by Claude Code even when it defers other tools behind its tool search:
# the loop an agent runs every turn, not worth a search turn each. plan_next is not in it:
# claim_task picks the best task itself, and plan_update(claim_next) claims the next.
ALWAYS_LOAD = ("claim_task", "heartbeat", "checkpoint", "plan_update")
PROFILES: dict[str, tuple[str, ...]] = {
    "worker": LOOP,
    "planner": (*LOOP, "task_create", "task_list", "route_task", "landing_queue"),
    "operator": (
        "health_report",
        "landing_queue",
        "provider_status",
        "route_task",
        "record_usage",
        "agent_register",
        "sandbox_run",
        "task_list",
        "task_get",
    ),
}

# Roles of HTTP bearer tokens (`wvo-mcp tokens add --role`), and what each may call: the one
# place this is decided. Over stdio there are no roles and the HTTP-only tools do not exist.
# The tools a person's gate needs (docs/security.md, person-only moves): the CLI's approve,
# reject, requeue, cancel and done, as tools for person tokens.
PERSON_TOOLS = (
    "task_approve",
    "task_reject",
    "task_requeue",
    "task_cancel",
    "task_done",
    # A person's hand on a running fleet (issue 46).
    "task_tell",
    "task_pause",
    "task_resume",
    "task_redirect",
    "inbox",
    "task_answer",
)
# Read-only views for operator tokens (who has access; never a secret).
OPERATOR_VIEWS = ("token_list",)
# A reviewer's verdict: only the run token the autopilot makes for one review may give it.
REVIEW_TOOLS = ("review_submit",)
HTTP_ONLY = (*PERSON_TOOLS, *OPERATOR_VIEWS, *REVIEW_TOOLS)
# Run tokens (the autopilot's, for one worker or reviewer run) reach only these, and only
# about their own task: a worker's task is claimed for it, and its work ends at needs_review.
SCOPED: dict[str, tuple[str, ...]] = {
    "worker": (
        "heartbeat",
        "checkpoint",
        "plan_update",
        "ask_person",
        "record_usage",
        "task_get",
        "context_read",
        "context_write",
    ),
    "reviewer": ("task_get", "context_read", *REVIEW_TOOLS),
    # A planner turns a goal into tasks; it holds none. It may see what the merge queue
    # holds (work in flight it should not plan again); a worker or reviewer, about one task,
    # has no need of the others'.
    "planner": (
        "task_create",
        "task_list",
        "task_get",
        "route_task",
        "context_read",
        "context_write",
        "landing_queue",
    ),
}
# What a person may read besides its own tools; a person never works tasks as an agent.
PERSON_READS = (
    "task_get",
    "task_list",
    "route_task",
    "context_read",
    "health_report",
    "provider_status",
    "landing_queue",
)


def role_allows(role: str, tool: str) -> bool:
    """agent: every agent tool, as itself. operator: the same, plus the operator views.
    person: the person tools and read-only views. Nobody else: nothing. (A run token's
    scope narrows an agent further: scope_allows.)"""
    if tool in PERSON_TOOLS:
        return role == "person"
    if tool in OPERATOR_VIEWS:
        return role == "operator"
    if tool in REVIEW_TOOLS:
        return False  # only a reviewer's run token (scope_allows)
    if role == "person":
        return tool in PERSON_READS
    return role in ("agent", "operator")


def role_refusal(role: str, tool: str) -> str:
    """Why `role` may not call `tool`, and what would be allowed."""
    if tool in PERSON_TOOLS:
        return (
            f"{tool} is a person's decision: it needs a person token (`wvo-mcp tokens add "
            f"--role person --name NAME`), or a person at the host runs the CLI; this is "
            f"a{'n' if role[:1] in 'aeiou' else ''} {role} token. Nothing was changed"
        )
    if tool in OPERATOR_VIEWS:
        return f"{tool} needs an operator token; this is a {role} token. Nothing was changed"
    if tool in REVIEW_TOOLS:
        return (
            f"{tool} is for the reviewer an autopilot starts, with the run token it makes "
            "for that one review. Nothing was changed"
        )
    if role == "person":
        return (
            f"a person token does not work tasks as an agent; it may call "
            f"{', '.join([*PERSON_TOOLS, *PERSON_READS])}. Use an agent token for {tool}. "
            "Nothing was changed"
        )
    return f"a {role!r} token may call no tools. Nothing was changed"


# Where an autopilot worker may move its task: it submits, or says it failed or is blocked.
# Giving it back to pending would relaunch it at once without counting an attempt.
WORKER_MOVES = ("needs_review", "failed", "blocked")


def scope_allows(purpose: str, tool: str) -> bool:
    """A run token's tools; an agent token without a scope never gives a review."""
    return tool in SCOPED.get(purpose, ())


def scope_refusal(purpose: str, task: str, tool: str) -> str:
    allowed = ", ".join(SCOPED.get(purpose, ()))
    return (
        f"this token is an autopilot {purpose}'s, for task {task!r}: it may call {allowed}, "
        f"not {tool}. Nothing was changed"
    )


def chosen(spec: str, known: Iterable[str]) -> frozenset[str]:
    """The tools `WVO_TOOLS` names: profiles and tool names, comma-separated; `all` (or
    nothing) is every tool."""
    names = set(known)
    picked: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part or part == "all":
            picked |= names
        elif part in PROFILES:
            picked |= set(PROFILES[part])
        elif part in names:
            picked.add(part)
        else:
            raise ValidationFailed(
                f"WVO_TOOLS: {part!r} is neither a profile ({', '.join([*PROFILES, 'all'])}) "
                f"nor a tool ({', '.join(sorted(names))}); e.g. WVO_TOOLS=worker,sandbox_run"
            )
    return frozenset(picked)


def _empty(value: Any) -> bool:
    """false, "", [] or {}: a default an omitted parameter obviously has."""
    return value is False or (isinstance(value, str | list | dict) and not value)


def lean(schema: Any) -> Any:
    """`schema` without titles, empty defaults, and with optional parameters as their plain
    type."""
    if isinstance(schema, list):
        return [lean(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    patterned = isinstance(schema.get("pattern"), str)  # an id: the server says what fits
    out = {
        k: lean(v)
        for k, v in schema.items()
        if not (k in ("title", "pattern") and isinstance(v, str))
        and not (k == "minLength" and v == 1)
        and not (k == "maxLength" and patterned)
        and not (k == "default" and _empty(v))
    }
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and out.get("default", 0) is None:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"], out["default"]
        out = {**rest[0], **out} if len(rest) == 1 else {"anyOf": rest, **out}
    return out


def flat(text: str) -> str:
    """A docstring as one paragraph per blank-line block, without its indentation."""
    blocks = [" ".join(block.split()) for block in text.split("\n\n")]
    return "\n".join(b for b in blocks if b)
