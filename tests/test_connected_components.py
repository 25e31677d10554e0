"""Connected components on planted graphs: chains, stars, large clusters,
against a union-find truth; the pure round functions; rounds needed."""
from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mdfs.pipeline.stages.connected_components import ConnectedComponents, large_star, small_star


def truth(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        a, b = find(u), find(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    nodes = {n for e in edges for n in e}
    comp = {}
    for n in nodes:
        comp.setdefault(find(n), []).append(n)
    return sorted((n, min(members)) for members in comp.values() for n in members)


def node(i):
    return f"n{i:05d}"


def chain(n, offset=0):
    ids = [node(offset + i) for i in range(n)]
    random.Random(n).shuffle(ids)  # a chain whose labels are not in path order
    return list(zip(ids, ids[1:]))


def simulate_rounds(edges):
    """Pure-Python rounds until nothing changes: how many pairs are needed."""
    e, rounds = set(edges), 0
    while True:
        rounds += 1
        nb = {}
        for u, v in e:
            nb.setdefault(u, []).append(v)
            nb.setdefault(v, []).append(u)
        e2 = {x for u, vs in nb.items() for x in large_star(u, vs)}
        sm = {}
        for u, v in e2:
            a, b = (u, v) if u > v else (v, u)
            sm.setdefault(a, []).append(b)
        e3 = {x for u, vs in sm.items() for x in small_star(u, vs)}
        if e3 == e:
            return rounds
        e = e3


def test_round_functions():
    assert sorted(large_star("c", ["a", "d", "e"])) == [("d", "a"), ("e", "a")]
    assert sorted(small_star("d", ["b", "c"])) == [("c", "b"), ("d", "b")]
    assert list(small_star("a", [])) == []


@pytest.mark.parametrize("n,max_pairs", [(10, 4), (100, 7), (1000, 9), (5000, 11)])
def test_rounds_needed_for_chains(n, max_pairs):
    # pairs until a pair changes nothing (so one more than needed); grows ~log n
    assert simulate_rounds(chain(n)) <= max_pairs


def test_stars_and_small_clusters_converge_fast():
    star = [(node(0), node(i)) for i in range(1, 2000)]
    assert simulate_rounds(star) <= 2
    reversed_star = [(node(2000), node(i)) for i in range(2000)]
    assert simulate_rounds(reversed_star) <= 3


def test_components_in_beam():
    star = [(node(5000), node(5001 + i)) for i in range(300)]
    big = [(node(6000 + random.Random(i).randrange(200)), node(6000 + random.Random(i + 7).randrange(200)))
           for i in range(600)]
    pairs = [(node(9000 + 2 * i), node(9001 + 2 * i)) for i in range(20)]
    edges = chain(200) + star + big + pairs + [(node(9999), node(9999))]
    expected = truth([e for e in edges if e[0] != e[1]])
    with BeamTestPipeline() as p:
        labels, unconverged = p | beam.Create(edges) | ConnectedComponents(max_rounds=10)
        assert_that(labels, equal_to(expected), label="labels")
        total = unconverged | beam.Map(lambda kv: kv[1]) | beam.CombineGlobally(sum)
        assert_that(total, equal_to([0]), label="converged")


def test_unconverged_nodes_are_reported():
    edges = chain(1000)
    with BeamTestPipeline() as p:
        labels, unconverged = p | beam.Create(edges) | ConnectedComponents(max_rounds=1)
        total = unconverged | beam.Map(lambda kv: kv[1]) | beam.CombineGlobally(sum)
        assert_that(total | beam.Map(lambda n: n > 0), equal_to([True]))
