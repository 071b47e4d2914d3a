"""find_cycle over task -> dependencies mappings."""

import itertools
from collections.abc import Mapping, Sequence

import pytest

from wvo_mcp.rules.graph import find_cycle


def assert_closed_cycle(path: list[str] | None, edges: Mapping[str, Sequence[str]]) -> None:
    assert path is not None, "expected a cycle"
    assert len(path) >= 2
    assert path[0] == path[-1]
    for node, dep in itertools.pairwise(path):
        assert node in edges, f"{node} is not a task of the batch"
        assert dep in edges[node], f"{node} -> {dep} is not an edge"
    # A simple cycle: each node once, apart from the closing repeat.
    assert len(set(path[:-1])) == len(path) - 1


@pytest.mark.parametrize(
    "edges",
    [
        {},
        {"a": []},
        {"a": ["b"], "b": []},
        {"a": ["b"], "b": ["c"], "c": []},
        # Diamond: d reached twice, no cycle.
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []},
        # Many parents of one node, listed in every order.
        {"x": [], "a": ["x"], "b": ["x", "a"], "c": ["b", "a", "x"]},
        # Duplicate edges.
        {"a": ["b", "b"], "b": []},
        # Tuples are sequences too.
        {"a": ("b",), "b": ()},
    ],
    ids=["empty", "single", "pair", "chain", "diamond", "fan-in", "duplicates", "tuples"],
)
def test_dags_have_no_cycle(edges: Mapping[str, Sequence[str]]) -> None:
    assert find_cycle(edges) is None


def test_self_loop() -> None:
    edges = {"a": ["a"]}
    assert find_cycle(edges) == ["a", "a"]


def test_two_node_cycle() -> None:
    edges = {"a": ["b"], "b": ["a"]}
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert set(path) == {"a", "b"}


def test_three_node_cycle() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"]}
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert len(path) == 4
    assert set(path) == {"a", "b", "c"}


def test_cycle_behind_a_tail_leaves_the_tail_out() -> None:
    edges = {"x": ["y"], "y": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert set(path) == {"a", "b", "c"}


def test_cycle_found_after_a_finished_dag_component() -> None:
    edges = {"p": ["q"], "q": [], "r": ["p"], "s": ["t"], "t": ["u"], "u": ["s"]}
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert set(path) == {"s", "t", "u"}


def test_cycle_through_a_shared_dependency() -> None:
    # b is finished (black) via a before the cycle c -> d -> c is entered.
    edges = {"a": ["b"], "b": [], "c": ["b", "d"], "d": ["c"]}
    assert_closed_cycle(find_cycle(edges), edges)


def test_nodes_outside_the_mapping_are_ignored() -> None:
    edges = {"a": ["outside"], "b": ["a", "elsewhere"], "c": ["outside", "b"]}
    assert find_cycle(edges) is None


def test_cycle_is_found_despite_outside_nodes() -> None:
    edges = {"a": ["outside", "b"], "b": ["elsewhere", "a"]}
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert "outside" not in path
    assert "elsewhere" not in path


DEPTH = 10_000


def chain(depth: int) -> dict[str, list[str]]:
    return {f"t{i}": [f"t{i + 1}"] if i + 1 < depth else [] for i in range(depth)}


def test_deep_chain_without_recursion_error() -> None:
    assert find_cycle(chain(DEPTH)) is None


def test_deep_chain_listed_leaf_first() -> None:
    edges = dict(reversed(list(chain(DEPTH).items())))
    assert find_cycle(edges) is None


def test_deep_cycle_without_recursion_error() -> None:
    edges = chain(DEPTH)
    edges[f"t{DEPTH - 1}"] = ["t0"]
    path = find_cycle(edges)
    assert_closed_cycle(path, edges)
    assert path is not None
    assert len(path) == DEPTH + 1


def test_input_is_not_modified() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"]}
    snapshot = {k: list(v) for k, v in edges.items()}
    find_cycle(edges)
    assert edges == snapshot
