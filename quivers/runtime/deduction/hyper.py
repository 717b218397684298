"""Semiring values over derivation hypergraphs, for rules of any shape.

Each sentence's chart (``quivers.core.deduction.chart.saturate``) is a hypergraph;
a batch of sentences is the disjoint union of theirs. Items are sorted by height, and
one height is computed at a time with tensor operations: gather every edge's premise
values, multiply them with the edge's rule-instance weight, and scatter-sum into the
conclusions together with the lexicon axioms. Python loops run over heights, never
over items or edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from quivers.core.deduction.chart import Chart
from quivers.runtime.deduction.semirings import Semiring


@dataclass(frozen=True)
class Level:
    size: int
    edge_inst: torch.Tensor  # (E,) rule-instance ids
    edge_premises: torch.Tensor  # (E, P) value positions, 0 (the semiring's one) as padding
    edge_target: torch.Tensor  # (E,) position within the level
    axiom_inst: torch.Tensor  # (A,)
    axiom_target: torch.Tensor  # (A,)


@dataclass(frozen=True)
class Plan:
    levels: tuple[Level, ...]
    goal_position: torch.Tensor  # (G,) value positions of goal items
    goal_sentence: torch.Tensor  # (G,) which sentence each goal belongs to
    n_sentences: int
    position: tuple[dict[int, int], ...]  # per sentence: item id -> value position


@dataclass(frozen=True)
class Grounded:
    """One sentence's chart with what the engines need of it."""

    chart: Chart
    level: list[int]
    edge_inst: list[int]  # per edge: its rule instance
    axiom_inst: list[int]  # per axiom: its lexicon instance
    goals: list[int]  # goal item ids


def plan(charts: Sequence[Grounded]) -> Plan:
    """The batched evaluation order of several sentences' hypergraphs."""
    height = max((max(g.level, default=0) for g in charts), default=0)
    by_level: list[list[tuple[int, int]]] = [[] for _ in range(height + 1)]
    for s, g in enumerate(charts):
        for item, lv in enumerate(g.level):
            by_level[lv].append((s, item))
    position: list[dict[int, int]] = [{} for _ in charts]
    nxt = 1  # position 0 holds the semiring's one
    for members in by_level:
        for s, item in members:
            position[s][item] = nxt
            nxt += 1
    incoming = [g.chart.incoming() for g in charts]
    axioms_of: list[dict[int, list[int]]] = []
    for g in charts:
        table: dict[int, list[int]] = {}
        for a, (item, _) in enumerate(g.chart.axioms):
            table.setdefault(item, []).append(a)
        axioms_of.append(table)
    arity = max((len(e.premises) for g in charts for e in g.chart.edges), default=1)
    levels = []
    for members in by_level:
        e_inst: list[int] = []
        e_prem: list[list[int]] = []
        e_tgt: list[int] = []
        a_inst: list[int] = []
        a_tgt: list[int] = []
        for local, (s, item) in enumerate(members):
            g = charts[s]
            for e in incoming[s][item]:
                edge = g.chart.edges[e]
                e_inst.append(g.edge_inst[e])
                prem = [position[s][p] for p in edge.premises]
                e_prem.append(prem + [0] * (arity - len(prem)))
                e_tgt.append(local)
            for a in axioms_of[s].get(item, []):
                a_inst.append(g.axiom_inst[a])
                a_tgt.append(local)
        levels.append(
            Level(
                len(members),
                torch.tensor(e_inst, dtype=torch.long),
                torch.tensor(e_prem, dtype=torch.long).reshape(len(e_prem), arity),
                torch.tensor(e_tgt, dtype=torch.long),
                torch.tensor(a_inst, dtype=torch.long),
                torch.tensor(a_tgt, dtype=torch.long),
            )
        )
    g_pos = [position[s][i] for s, g in enumerate(charts) for i in g.goals]
    g_sent = [s for s, g in enumerate(charts) for _ in g.goals]
    return Plan(
        tuple(levels),
        torch.tensor(g_pos, dtype=torch.long),
        torch.tensor(g_sent, dtype=torch.long),
        len(charts),
        tuple(position),
    )


def values(sr: Semiring, weights: torch.Tensor, p: Plan) -> torch.Tensor:
    """Every item's value, at its plan position (position 0 is the semiring's one)."""
    vals = sr.full((1,), sr.one, weights)
    for lv in p.levels:
        premise_vals = sr.prod(vals[lv.edge_premises], dim=1)
        contrib = torch.cat([sr.times(weights[lv.edge_inst], premise_vals), weights[lv.axiom_inst]])
        target = torch.cat([lv.edge_target, lv.axiom_target])
        vals = torch.cat([vals, sr.scatter_sum(contrib, target, lv.size)])
    return vals


def inside(sr: Semiring, weights: torch.Tensor, p: Plan) -> torch.Tensor:
    """(n_sentences,) goal values in the carrier."""
    vals = values(sr, weights, p)
    return sr.scatter_sum(vals[p.goal_position], p.goal_sentence, p.n_sentences)
