"""The symbolic chart: agenda-based saturation of a deduction system.

``saturate`` runs forward chaining (Shieber, Schabes & Pereira 1995; Goodman 1999,
"Semiring parsing") from a set of seed items: each item popped from the agenda is
matched against every premise of every rule, the other premises are joined with the
items already in the chart, and each new conclusion goes on the agenda. A combination
of premises is generated exactly once, when the last of its items is popped, at the
first premise position that item fills; so the result is the derivation hypergraph
(items, hyperedges, axioms) with no duplicate edges. It needs no weights: the runtime
computes semiring values over the hypergraph afterwards.

It terminates: conclusions larger than the system's ``depth`` are dropped, rule
conclusions hold no variable that the premises do not bind (the checker rejects it),
and positions only come from the seeds, so finitely many items can exist. A guard on
the item count turns an astronomically large (but finite) chart into an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from quivers.core.deduction.system import DeductionSystem, Rule
from quivers.core.deduction.terms import Term, Var, is_ground, item_size, lift, match, show

MAX_ITEMS = 200_000


class DeductionError(ValueError):
    """The system cannot be computed exactly (a cycle, a runaway chart, ...)."""


@dataclass(frozen=True, slots=True)
class Edge:
    rule: int  # index into system.rules
    key: tuple  # the rule's variable bindings, positions lifted to POS
    premises: tuple[int, ...]  # item ids, in the rule's premise order
    conclusion: int


@dataclass
class Chart:
    items: list[Term] = field(default_factory=list)
    index: dict[Term, int] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    axioms: list[tuple[int, int]] = field(default_factory=list)  # (item, lexicon entry)
    _incoming: list[list[int]] = field(default_factory=list, repr=False)

    def incoming(self) -> list[list[int]]:
        """Edge ids by conclusion item (computed once: a saturated chart is final)."""
        if len(self._incoming) != len(self.items):
            out: list[list[int]] = [[] for _ in self.items]
            for e, edge in enumerate(self.edges):
                out[edge.conclusion].append(e)
            self._incoming = out
        return self._incoming

    def levels(self, system: DeductionSystem) -> list[int]:
        """Each item's height in the hypergraph (0 for items only seeded); an error
        naming the rules when items derive each other (a cycle has unboundedly many
        derivations, which no finite chart computes exactly)."""
        incoming = self.incoming()
        # the premises an item waits for, flattened over its incoming edges
        needs = [
            [p for e in incoming[i] for p in self.edges[e].premises] for i in range(len(self.items))
        ]
        level = [-1] * len(self.items)
        on_stack = [False] * len(self.items)
        for root in range(len(self.items)):
            if level[root] >= 0:
                continue
            stack: list[list[int]] = [[root, 0]]
            on_stack[root] = True
            while stack:
                top = stack[-1]
                item, k = top
                if k < len(needs[item]):
                    top[1] += 1
                    p = needs[item][k]
                    if on_stack[p]:
                        raise DeductionError(self._cycle_message(system, [s[0] for s in stack], p))
                    if level[p] < 0:
                        on_stack[p] = True
                        stack.append([p, 0])
                    continue
                stack.pop()
                on_stack[item] = False
                level[item] = max(
                    (1 + max(level[p] for p in self.edges[e].premises) for e in incoming[item]),
                    default=0,
                )
        return level

    def _cycle_message(self, system: DeductionSystem, path: list[int], back: int) -> str:
        loop = path[path.index(back) :]
        inside = set(loop)
        rules = [
            system.rules[edge.rule].name
            for edge in self.edges
            if edge.conclusion in inside and inside.intersection(edge.premises)
        ]
        items = " <- ".join(show(self.items[i]) for i in [*loop, back])
        names = ", ".join(f"'{r}'" for r in dict.fromkeys(rules))
        return (
            f"deduction '{system.name}': the items {items} derive each other "
            f"(rules {names}), so they have unboundedly many derivations"
        )


def saturate(
    system: DeductionSystem,
    seeds: Sequence[tuple[Term, int]],
    max_items: int = MAX_ITEMS,
) -> Chart:
    """The derivation hypergraph of ``system`` from the seed items ``(item, entry)``."""
    chart = Chart()
    # items by (functor, arity) and by (functor, arity, argument position, argument)
    by_head: dict[tuple, list[int]] = defaultdict(list)
    by_arg: dict[tuple, list[int]] = defaultdict(list)
    rules = system.rules
    variables = [r.variables for r in rules]
    triggers = _triggers(rules)

    def add(item: Term) -> int:
        found = chart.index.get(item)
        if found is not None:
            return found
        if len(chart.items) >= max_items:
            raise DeductionError(
                f"deduction '{system.name}': the chart grew past {max_items} items; "
                f"lower depth={system.depth} or restrict the rules that build larger items"
            )
        n = len(chart.items)
        chart.items.append(item)
        chart.index[item] = n
        if isinstance(item, tuple):
            head = (item[0], len(item))
            by_head[head].append(n)
            for a in range(1, len(item)):
                by_arg[(*head, a, item[a])].append(n)
        return n

    def candidates(pattern: Term, env: dict[Var, Term]) -> list[int]:
        if not isinstance(pattern, tuple):
            got = chart.index.get(pattern)  # an atom premise
            return [] if got is None else [got]
        head = (pattern[0], len(pattern))
        best = by_head.get(head, [])
        for a in range(1, len(pattern)):
            arg = pattern[a]
            if isinstance(arg, Var):
                arg = env.get(arg, arg)
            if is_ground(arg):
                found = by_arg.get((*head, a, arg), [])
                if len(found) < len(best):
                    best = found
                    if not best:
                        break
        return best

    def fire(r: int, rule: Rule, env: dict[Var, Term], premises: list[int]) -> None:
        conclusion = _substitute(rule.conclusion, env)
        if not is_ground(conclusion):
            raise DeductionError(
                f"deduction '{system.name}': rule '{rule.name}' concludes "
                f"{show(conclusion)}, whose variables no premise binds"
            )
        if item_size(conclusion) > system.depth:
            return
        key = tuple(lift(env[v]) for v in variables[r])
        chart.edges.append(Edge(r, key, tuple(premises), add(conclusion)))

    def join(
        r: int, rule: Rule, q: int, pos: int, env: dict[Var, Term], chosen: list[int], p: int
    ) -> None:
        if pos == len(rule.premises):
            fire(r, rule, env, chosen)
            return
        if pos == q:
            join(r, rule, q, pos + 1, env, chosen, p)
            return
        pattern = rule.premises[pos]
        # earlier positions may only use items popped before p, later ones up to p
        limit = p if pos < q else p + 1
        for c in candidates(pattern, env):
            if c >= limit:
                continue
            got = match(pattern, chart.items[c], env)
            if got is not None:
                chosen[pos] = c
                join(r, rule, q, pos + 1, got, chosen, p)

    for item, entry in seeds:
        chart.axioms.append((add(item), entry))
    p = 0
    while p < len(chart.items):
        item = chart.items[p]
        for r, q in _triggered(triggers, item):
            rule = rules[r]
            env = match(rule.premises[q], item, {})
            if env is None:
                continue
            chosen = [-1] * len(rule.premises)
            chosen[q] = p
            join(r, rule, q, 0, env, chosen, p)
        p += 1
    return chart


Triggers = dict[tuple, list[tuple[int, int]]]


def _triggers(rules: Sequence[Rule]) -> Triggers:
    """Premises by a discriminating key: (functor, arity, position, constant) for the
    first constant argument, (functor, arity, None) when there is none, (atom,) for an
    atom premise. Only premises under an item's keys can match it."""
    out: Triggers = defaultdict(list)
    for r, rule in enumerate(rules):
        for q, pattern in enumerate(rule.premises):
            if not isinstance(pattern, tuple):
                out[(pattern,)].append((r, q))
                continue
            head = (pattern[0], len(pattern))
            key: tuple = (*head, None)
            for a in range(1, len(pattern)):
                if is_ground(pattern[a]):
                    key = (*head, a, pattern[a])
                    break
            out[key].append((r, q))
    return out


def _triggered(triggers: Triggers, item: Term) -> list[tuple[int, int]]:
    """The (rule, premise) pairs that may match ``item``, in rule order."""
    if not isinstance(item, tuple):
        return triggers.get((item,), [])
    head = (item[0], len(item))
    found = list(triggers.get((*head, None), []))
    for a in range(1, len(item)):
        found += triggers.get((*head, a, item[a]), [])
    found.sort()
    return found


def _substitute(term: Term, env: dict[Var, Term]) -> Term:
    if isinstance(term, Var):
        return env.get(term, term)
    if isinstance(term, tuple):
        return (term[0], *(_substitute(a, env) for a in term[1:]))
    return term
