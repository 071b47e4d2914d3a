"""Dependency-graph checks, without I/O: unknown ids and cycles refused (check_dependencies).

Carried out by `wvo_mcp/services/tasks.py`, `wvo_mcp/services/roadmap_update.py` and
`wvo_mcp/edge/issue_sync.py`."""

from collections.abc import Collection, Mapping, Sequence

from wvo_mcp.errors import ValidationFailed


def check_dependencies(
    edges: Mapping[str, Sequence[str]],
    checked: Collection[str],
    known: Collection[str],
    where: str,
    cycle_hint: str = "",
) -> None:
    """Refuse a graph in which a task of `checked` depends on itself or on an id that is not
    `known`, or that has a cycle; `where` says which ids may be depended on."""
    for task_id in checked:
        if task_id in edges[task_id]:
            raise ValidationFailed(f"task {task_id!r} depends on itself")
    unknown = [
        f"{task_id!r} depends on unknown {dep!r}"
        for task_id in checked
        for dep in edges[task_id]
        if dep not in known
    ]
    if unknown:
        raise ValidationFailed(
            f"unknown dependency ids: {'; '.join(unknown[:10])}; depend only on {where}"
        )
    cycle = find_cycle(edges)
    if cycle:
        raise ValidationFailed(
            f"dependency cycle: {' -> '.join(cycle)}; remove one of these edges{cycle_hint}"
        )


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as a path [a, b, ..., a], or None. `edges` maps task -> dependencies."""
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        # Iterative DFS: batches can be thousands deep, beyond Python's recursion limit.
        path: list[str] = [root]
        stack = [iter(edges[root])]
        colour[root] = grey
        while stack:
            for dep in stack[-1]:
                state = colour.get(dep, black)  # nodes outside the batch cannot close a cycle
                if state == grey:
                    return [*path[path.index(dep) :], dep]
                if state == white:
                    colour[dep] = grey
                    path.append(dep)
                    stack.append(iter(edges[dep]))
                    break
            else:
                colour[path.pop()] = black
                stack.pop()
    return None
