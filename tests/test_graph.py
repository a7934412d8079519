"""The step graph: validation, dependency order, what may run concurrently."""

import pytest

from amc_dist.experiment.graph import Graph, Step


def step(name, *needs):
    return Step(name, lambda ctx: None, needs)


def test_order_respects_dependencies_and_keeps_declaration_order():
    graph = Graph([step("c", "b"), step("a"), step("b", "a"), step("d", "a")])
    assert [s.name for s in graph] == ["a", "b", "c", "d"]
    assert [s.name for s in graph.ready(set())] == ["a"]
    assert [s.name for s in graph.ready({"a"})] == ["b", "d"]  # independent: may run at once
    assert graph.upstream(["c"]) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a"), step("a")], "step 'a' is declared twice"),
        ([step("a", "ghost")], r"step 'a' needs unknown steps \['ghost'\]"),
        ([step("a", "b"), step("b", "a"), step("c")], r"steps \['a', 'b'\] depend on each other in a cycle"),
    ],
)
def test_bad_graphs_are_refused(steps, message):
    with pytest.raises(ValueError, match=message):
        Graph(steps)


def test_upstream_of_an_unknown_step():
    with pytest.raises(ValueError, match="unknown step 'nope'"):
        Graph([step("a")]).upstream(["nope"])
