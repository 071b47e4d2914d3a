"""Dependency-graph checks, without I/O."""

from collections.abc import Mapping, Sequence


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
