"""What a deduction system derives with positions abstracted away.

Replacing every chart position by one placeholder (``terms.POS``) and saturating from
every lexicon entry gives the system's *labels* (items up to position) and *rule
instances* (a rule with its non-position variables bound). That finite view is what

- weights are attached to: each instance weighs its rule's weight, normalised over the
  instances and lexicon entries that conclude the same label (a locally normalised,
  generative grammar, as a PCFG's rules are normalised per left-hand side);
- the dense CKY plan is built from, when every rule has the shape of a CKY step
  (``span(I, J, A) |- span(I, J, B)``, ``span(I, K, A), span(K, J, B) |- span(I, J, C)``);
- the checker asks whether the start symbol is derivable at all and whether unary
  rules form a cycle (a cycle on one span has unboundedly many derivations).

The position-free saturation over-approximates every sentence's chart: each ground
edge lifts to an instance found here.
"""

from __future__ import annotations

from dataclasses import dataclass

from quivers.core.deduction.chart import Chart, DeductionError, saturate
from quivers.core.deduction.system import SPAN, DeductionSystem, Rule
from quivers.core.deduction.terms import POS, Term, Var, item_size, show, variables


@dataclass(frozen=True)
class Instance:
    """One weighted unit: a rule with its bindings, or a lexicon entry."""

    rule: int | None  # index into system.rules, None for a lexicon entry
    entry: int | None  # index into system.lexicon
    key: tuple  # the rule's lifted bindings (empty for an entry)
    label: int  # the conclusion's label id
    param: int | None  # index of the learnable weight, None for a fixed one
    premises: tuple[int, ...] = ()  # premise label ids (rules only)


@dataclass(frozen=True)
class CKYPlan:
    """The dense form of a grammar all of whose rules are CKY steps."""

    categories: tuple[tuple, ...]  # label id order: the category part of span labels
    unary: tuple[tuple[int, int, int], ...]  # (premise cat, conclusion cat, instance)
    binary: tuple[tuple[int, int, int, int], ...]  # (left, right, conclusion, instance)
    lexical: tuple[tuple[int, int, int], ...]  # (word id, cat, instance)
    unary_depth: int  # the longest chain of unary instances (acyclic)


@dataclass(frozen=True)
class Grammar:
    system: DeductionSystem
    labels: tuple[Term, ...]
    instances: tuple[Instance, ...]
    instance_index: dict[tuple[int, tuple], int]  # (rule, key) -> instance id
    normalised: tuple[bool, ...]  # per weight group: is it normalised
    goal_labels: tuple[int, ...]  # the labels span(_, _, start, ...)
    cky: CKYPlan | None
    # Weights live on *syntactic* instances: an instance with the variables that only
    # occur in forms (the fourth place of a span) forgotten, so that an expansion
    # weighs the same whatever meaning it builds. Without forms, one per instance.
    syn_of: tuple[int, ...] = ()  # instance -> syntactic instance
    syn_param: tuple[int | None, ...] = ()  # syntactic instance -> learnable weight
    syn_group: tuple[int, ...] = ()  # syntactic instance -> weight group

    @property
    def n_params(self) -> int:
        return len(self.system.weight_names)

    def entry_instance(self, entry: int) -> int:
        return len(self.instances) - len(self.system.lexicon) + entry


def analyse(system: DeductionSystem) -> Grammar:
    """The position-free view of ``system`` (raises DeductionError when it cannot be
    computed exactly)."""
    for e in system.lexicon:
        if item_size(system.seed(e, POS, POS)) > system.depth:
            raise DeductionError(
                f"deduction '{system.name}': the lexicon entry \"{e.word}\" has category "
                f"{show(e.category)}, larger than depth={system.depth}"
            )
    seeds = [(system.seed(e, POS, POS), k) for k, e in enumerate(system.lexicon)]
    chart = saturate(system, seeds)
    params = _param_slots(system)
    instances: list[Instance] = []
    index: dict[tuple[int, tuple], int] = {}
    for edge in chart.edges:
        k = (edge.rule, edge.key)
        if k not in index:
            index[k] = len(instances)
            instances.append(
                Instance(
                    edge.rule, None, edge.key, edge.conclusion, params[0][edge.rule], edge.premises
                )
            )
    for n, entry in enumerate(system.lexicon):
        label = chart.index[system.seed(entry, POS, POS)]
        instances.append(Instance(None, n, (), label, params[1][n]))
    syn_of, syn_param, syn_group = _syntactic(system, chart, instances)
    learnable_groups = {g for g, p in zip(syn_group, syn_param, strict=True) if p is not None}
    normalised = tuple(n in learnable_groups for n in range(max(syn_group, default=-1) + 1))
    goals = tuple(
        n
        for n, item in enumerate(chart.items)
        if isinstance(item, tuple) and item[0] == SPAN and len(item) > 3 and item[3] == system.start
    )
    cky = _cky_plan(system, chart, instances)
    return Grammar(
        system,
        tuple(chart.items),
        tuple(instances),
        index,
        normalised,
        goals,
        cky,
        syn_of,
        syn_param,
        syn_group,
    )


def _syntactic(
    system: DeductionSystem, chart: Chart, instances: list[Instance]
) -> tuple[tuple[int, ...], tuple[int | None, ...], tuple[int, ...]]:
    """Syntactic instances and their weight groups: the conclusion's label without
    its form, so a PCFG-like grammar is normalised per category."""
    forms = system.span_arity == 4
    drop: list[set[int]] = []
    for rule in system.rules:
        in_forms: set[Var] = set()
        elsewhere: set[Var] = set()
        for t in (*rule.premises, rule.conclusion):
            for n, arg in enumerate(t[1:] if isinstance(t, tuple) else ()):
                is_form = forms and t[0] == SPAN and len(t) == 5 and n == 3
                (in_forms if is_form else elsewhere).update(variables(arg))
        only = in_forms - elsewhere
        drop.append({k for k, v in enumerate(rule.variables) if v in only})
    syn_index: dict[tuple, int] = {}
    syn_param: list[int | None] = []
    syn_group: list[int] = []
    groups: dict[Term, int] = {}
    syn_of: list[int] = []
    for inst in instances:
        if inst.rule is not None:
            key: tuple = (
                "rule",
                inst.rule,
                tuple(k for n, k in enumerate(inst.key) if n not in drop[inst.rule]),
            )
        else:
            key = ("entry", inst.entry)
        if key not in syn_index:
            syn_index[key] = len(syn_param)
            syn_param.append(inst.param)
            label = chart.items[inst.label]
            if forms and isinstance(label, tuple) and label[0] == SPAN and len(label) == 5:
                label = label[:4]
            syn_group.append(groups.setdefault(label, len(groups)))
        syn_of.append(syn_index[key])
    return tuple(syn_of), tuple(syn_param), tuple(syn_group)


def unreachable_start(system: DeductionSystem) -> bool:
    """True when no sentence can derive ``span(0, n, start)``."""
    return not analyse(system).goal_labels


def _param_slots(system: DeductionSystem) -> tuple[list[int | None], list[int | None]]:
    n = 0
    rules: list[int | None] = []
    for r in system.rules:
        rules.append(n if r.learnable else None)
        n += r.learnable
    entries: list[int | None] = []
    for e in system.lexicon:
        entries.append(n if e.learnable else None)
        n += e.learnable
    return rules, entries


def cky_shape(rule: Rule, arity: int) -> str | None:
    """'unary' or 'binary' (left premise first) or 'binary-swapped' when ``rule`` is a
    CKY step over ``span`` items of ``arity`` arguments; None otherwise."""
    terms = (*rule.premises, rule.conclusion)
    if not all(isinstance(t, tuple) and t[0] == SPAN and len(t) == arity + 1 for t in terms):
        return None
    c = rule.conclusion
    i, j = c[1], c[2]
    if not (isinstance(i, Var) and isinstance(j, Var)) or i == j:
        return None
    positions = {i, j}
    shape: str | None = None
    if len(rule.premises) == 1:
        p = rule.premises[0]
        if (p[1], p[2]) == (i, j):
            shape = "unary"
    elif len(rule.premises) == 2:
        a, b = rule.premises
        for left, right, name in ((a, b, "binary"), (b, a, "binary-swapped")):
            k = left[2]
            if (
                left[1] == i
                and right[2] == j
                and right[1] == k
                and isinstance(k, Var)
                and k not in positions
            ):
                positions.add(k)
                shape = name
                break
    if shape is None:
        return None
    for t in terms:
        for arg in t[3:]:
            if any(v in positions for v in variables(arg)):
                return None
    return shape


def _cky_plan(system: DeductionSystem, chart: Chart, instances: list[Instance]) -> CKYPlan | None:
    arity = system.span_arity
    shapes = [cky_shape(r, arity) for r in system.rules]
    if any(s is None for s in shapes):
        return None
    cat_of = {n: item[3:] for n, item in enumerate(chart.items)}
    cats = tuple(dict.fromkeys(cat_of.values()))
    cat_id = {c: k for k, c in enumerate(cats)}
    unary: list[tuple[int, int, int]] = []
    binary: list[tuple[int, int, int, int]] = []
    for n, inst in enumerate(instances):
        if inst.rule is None:
            continue
        shape = shapes[inst.rule]
        conclusion = cat_id[cat_of[inst.label]]
        prem = [cat_id[cat_of[p]] for p in inst.premises]
        if shape == "unary":
            unary.append((prem[0], conclusion, n))
        elif shape == "binary":
            binary.append((prem[0], prem[1], conclusion, n))
        else:
            binary.append((prem[1], prem[0], conclusion, n))
    depth = _unary_depth(system, len(cats), unary, cats)
    words = {w: k for k, w in enumerate(system.vocabulary)}
    lexical = []
    for n, inst in enumerate(instances):
        if inst.entry is not None:
            lexical.append((words[system.lexicon[inst.entry].word], cat_id[cat_of[inst.label]], n))
    return CKYPlan(cats, tuple(unary), tuple(binary), tuple(lexical), depth)


def _unary_depth(
    system: DeductionSystem, n: int, unary: list[tuple[int, int, int]], cats: tuple
) -> int:
    """The longest chain of unary instances; a cycle is an error naming it."""
    succ: list[list[int]] = [[] for _ in range(n)]
    rule_of: dict[tuple[int, int], int] = {}
    for a, b, inst in unary:
        succ[a].append(b)
        rule_of.setdefault((a, b), inst)
    longest = [-1] * n
    state = [0] * n  # 0 new, 1 on the stack, 2 done

    def visit(a: int, path: list[int]) -> int:
        if state[a] == 2:
            return longest[a]
        if state[a] == 1:
            loop = path[path.index(a) :] + [a]
            shown = " -> ".join(_show_cat(cats[c]) for c in loop)
            raise DeductionError(
                f"deduction '{system.name}': unary rules form a cycle {shown} on one span, "
                "so it has unboundedly many derivations"
            )
        state[a] = 1
        best = 0
        for b in succ[a]:
            best = max(best, 1 + visit(b, [*path, a]))
        state[a] = 2
        longest[a] = best
        return best

    return max((visit(a, []) for a in range(n)), default=0)


def _show_cat(cat: tuple) -> str:
    return ", ".join(show(c) for c in cat)
