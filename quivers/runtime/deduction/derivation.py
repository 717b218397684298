"""Derivation trees: the k best of a chart, and draws from a chart's inside weights.

k-best follows Huang & Chiang (2005, "Better k-best parsing", algorithm 1): items in
height order, each keeping its k best derivations, an edge combining the k-best lists
of its premises. Sampling is the top-down pass of a forward-filtering,
backward-sampling scheme: at each item choose an incoming edge or lexicon axiom with
probability proportional to its weight times its premises' inside values.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from quivers.core.deduction.system import SPAN, DeductionSystem
from quivers.core.deduction.terms import Term, show
from quivers.runtime.deduction.hyper import Grounded


@dataclass(frozen=True)
class Derivation:
    """A derivation: the item proved, the rule (or lexicon word) that proved it, and the
    sub-derivations of its premises. ``score`` is its log weight."""

    item: Term
    rule: str | None  # None for a lexicon axiom
    word: str | None
    children: tuple[Derivation, ...]
    score: float

    @property
    def span(self) -> tuple[int, int] | None:
        it = self.item
        if isinstance(it, tuple) and it[0] == SPAN and isinstance(it[1], int):
            return it[1], it[2]
        return None

    @property
    def label(self) -> str:
        it = self.item
        if isinstance(it, tuple) and it[0] == SPAN and len(it) > 3:
            return ", ".join(show(a) for a in it[3:])
        return show(it)

    def bracketed(self, rules: bool = False) -> str:
        """``(S (NP (Det the) (N cat)) (VP (V sleeps)))``; with ``rules``, each inner
        node also names its rule: ``(S:s_np_vp ...)``."""
        if self.word is not None:
            return f"({self.label} {self.word})"
        head = f"{self.label}:{self.rule}" if rules else self.label
        return f"({head} {' '.join(c.bracketed(rules) for c in self.children)})"

    def words(self) -> list[str]:
        """The yield in sentence order (a discontinuous constituent's words are
        not contiguous in the tree, so leaves are ordered by their positions)."""
        return [w for _, w in sorted(self._leaves(), key=lambda leaf: leaf[0])]

    def _leaves(self) -> list[tuple[int, str]]:
        if self.word is not None:
            span = self.span
            return [(span[0] if span is not None else 0, self.word)]
        return [leaf for c in self.children for leaf in c._leaves()]

    def rules(self) -> list[str]:
        """The rule names used, root first, depth first."""
        own = [] if self.rule is None else [self.rule]
        return own + [r for c in self.children for r in c.rules()]

    def __str__(self) -> str:
        return self.bracketed()


def k_best(
    system: DeductionSystem, g: Grounded, log_w: Sequence[float], k: int
) -> list[Derivation]:
    """The k best derivations of the goal items, best first (ties in chart order)."""
    chart = g.chart
    incoming = chart.incoming()
    axioms: dict[int, list[int]] = {}
    for a, (item, _) in enumerate(chart.axioms):
        axioms.setdefault(item, []).append(a)
    best: list[list[Derivation]] = [[] for _ in chart.items]
    order = sorted(range(len(chart.items)), key=lambda i: g.level[i])
    for item in order:
        term = chart.items[item]
        cands: list[Derivation] = []
        for a in axioms.get(item, []):
            entry = system.lexicon[chart.axioms[a][1]]
            cands.append(Derivation(term, None, entry.word, (), log_w[g.axiom_inst[a]]))
        for e in incoming[item]:
            edge = chart.edges[e]
            w = log_w[g.edge_inst[e]]
            name = system.rules[edge.rule].name
            for combo in itertools.product(*(best[p] for p in edge.premises)):
                score = w + sum(d.score for d in combo)
                cands.append(Derivation(term, name, None, tuple(combo), score))
        best[item] = _top(cands, k)
    return _top([d for goal in g.goals for d in best[goal]], k)


def _top(cands: list[Derivation], k: int) -> list[Derivation]:
    finite = [d for d in cands if d.score > -math.inf]
    return heapq.nlargest(k, finite, key=lambda d: d.score)


def draw(
    system: DeductionSystem,
    g: Grounded,
    log_w: Sequence[float],
    inside: Sequence[float],
    length: int,
    generator: torch.Generator | None,
) -> list[str]:
    """One sentence from a chart seeded with every lexicon entry at every position
    (``inside`` holds each item's log inside value, by item id)."""
    chart = g.chart
    incoming = chart.incoming()
    axioms: dict[int, list[int]] = {}
    for a, (item, _) in enumerate(chart.axioms):
        axioms.setdefault(item, []).append(a)
    words: list[str | None] = [None] * length

    def choose(logits: list[float]) -> int:
        t = torch.tensor(logits, dtype=torch.float64)
        probs = torch.softmax(t, 0)
        return int(torch.multinomial(probs, 1, generator=generator))

    goal_logits = [inside[i] for i in g.goals]
    stack = [g.goals[choose(goal_logits)]]
    while stack:
        item = stack.pop()
        options: list[tuple[str, int]] = []
        logits: list[float] = []
        for a in axioms.get(item, []):
            options.append(("axiom", a))
            logits.append(log_w[g.axiom_inst[a]])
        for e in incoming[item]:
            options.append(("edge", e))
            logits.append(log_w[g.edge_inst[e]] + sum(inside[p] for p in chart.edges[e].premises))
        kind, n = options[choose(logits)]
        if kind == "edge":
            stack.extend(chart.edges[n].premises)
            continue
        term = chart.items[item]
        pos = term[1]
        if not isinstance(pos, int) or words[pos] is not None:
            raise ValueError(
                f"deduction '{system.name}' cannot be sampled: a derivation uses the word "
                f"at position {pos} twice, so its yield is not a sentence"
            )
        words[pos] = system.lexicon[chart.axioms[n][1]].word
    missing = [i for i, w in enumerate(words) if w is None]
    if missing:
        raise ValueError(
            f"deduction '{system.name}' cannot be sampled: a derivation leaves positions "
            f"{missing} without a word"
        )
    return [w for w in words if w is not None]
