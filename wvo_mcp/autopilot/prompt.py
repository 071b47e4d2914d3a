"""The prompt a worker starts with (pure): the work-loop directive, then its task, already
claimed for it, with the lease token to use and, on a retry, where the last attempt got."""

from wvo_mcp.models import Checkpoint, TaskDetail


def worker_prompt(
    *,
    directive: str,
    task: TaskDetail,
    agent_id: str,
    lease_token: str,
    attempt: int,
    branch: str,
    checkpoint: Checkpoint | None,
    review_notes: str | None = None,
    finish: str = "done",
) -> str:
    """`finish`: the status that ends the work (`needs_review` when the autopilot merges or
    has the work reviewed before it counts as done)."""
    b = task.breakdown
    done = [d.id for d in task.dependencies if d.status == "done"]
    parts = [
        directive.strip(),
        "# Your task",
        f"You are {agent_id}. Task {task.id!r} is already claimed for you (attempt {attempt}): "
        "do not call plan_next or claim_task. Pass these with every heartbeat, checkpoint "
        f"and plan_update about it: task_id {task.id!r}, lease_token {lease_token!r}.",
        f"Title: {task.title}",
        *([f"Description:\n{task.description}"] if task.description else []),
        f"Why now (WSJF {task.score}): business value {b.business_value}, time criticality "
        f"{b.time_criticality}, risk reduction {b.risk_reduction}, enables {b.enablement} "
        f"task(s), job size {b.job_size}.",
        *([f"Done before it: {', '.join(done)}."] if done else []),
        f"Work in this folder, a git worktree on branch {branch!r}, and commit your changes "
        f"there. Checkpoint as you go. Finish with plan_update: {finish} when the work is "
        "complete and committed, failed or blocked with a reason otherwise.",
    ]
    if checkpoint is not None:
        parts.append(
            f"An earlier attempt got this far (checkpoint {checkpoint.seq}, "
            f"{checkpoint.progress if checkpoint.progress is not None else '?'}%): "
            f"{checkpoint.summary}"
            + (f"\nNext steps it left: {checkpoint.next_steps}" if checkpoint.next_steps else "")
        )
    if review_notes:
        parts.append(f"A reviewer asked for changes:\n{review_notes}")
    return "\n\n".join(parts) + "\n"


VERDICTS = ("APPROVE", "REQUEST CHANGES")


def review_prompt(*, task: TaskDetail, author: str, branch: str, diff: str) -> str:
    """What a reviewer is asked: the task, the diff, and a verdict on the first line."""
    return (
        "\n\n".join(
            [
                f"You review task {task.id!r}, done by {author} on branch {branch!r} (this "
                "folder is its worktree). Do not change files; do not call plan_update or "
                "claim_task.",
                f"Title: {task.title}",
                *([f"Description:\n{task.description}"] if task.description else []),
                f"The change (git diff):\n{diff}",
                "Answer with APPROVE or REQUEST CHANGES alone on the first line, then your notes: "
                "what is wrong and what to do about it (the next attempt is given them).",
            ]
        )
        + "\n"
    )


def verdict(answer: str) -> tuple[str | None, str]:
    """("approve" | "changes" | None, the notes) from a reviewer's answer."""
    first, _, rest = answer.strip().partition("\n")
    word = first.strip().strip("*#:. ").upper()
    found = {"APPROVE": "approve", "REQUEST CHANGES": "changes"}.get(word)
    return found, (rest.strip() or first.strip())
