"""Small deduction systems for the runtime tests, built from plain production lists,
and brute-force derivation enumerators that share no code with the runtime."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

from quivers.core.deduction.system import DeductionSystem, LexEntry, Rule
from quivers.core.deduction.terms import Var

I, J, K, X, Y, Z = (Var(n) for n in "IJKXYZ")  # noqa: E741 (the literature's names)


def span(i, j, cat):
    return ("span", i, j, cat)


# A small ambiguous PCFG: PP attachment, unary chains, a word in two categories.
BINARY = [
    ("S", "NP", "VP"),
    ("NP", "Det", "N"),
    ("NP", "NP", "PP"),
    ("VP", "V", "NP"),
    ("VP", "VP", "PP"),
    ("PP", "P", "NP"),
]
UNARY = [("VP", "V"), ("NP", "N")]
LEXICON = [("the", "Det"), ("dog", "N"), ("saw", "N"), ("saw", "V"), ("with", "P")]


def cfg_system(
    binary=BINARY, unary=UNARY, lexicon=LEXICON, semiring="LogProb", learnable=True, start="S"
) -> DeductionSystem:
    rules = [
        Rule(f"{a}_{b}_{c}", (span(I, K, b), span(K, J, c)), span(I, J, a), learnable)
        for a, b, c in binary
    ]
    rules += [Rule(f"{a}_{b}", (span(I, J, b),), span(I, J, a), learnable) for a, b in unary]
    lex = [LexEntry(w, c, w, learnable) for w, c in lexicon]
    return DeductionSystem("G", (), tuple(rules), tuple(lex), semiring, start)


def normalised_cfg(weights: list[float], binary=BINARY, unary=UNARY, lexicon=LEXICON):
    """Per-LHS softmax of the logits (rules in system order, then lexicon): returns
    log-probability tables keyed like the productions."""
    names = (
        [("bin", p) for p in binary] + [("un", p) for p in unary] + [("lex", p) for p in lexicon]
    )
    lhs = [p[0] if kind != "lex" else p[1] for kind, p in names]
    groups: dict[str, list[int]] = defaultdict(list)
    for n, a in enumerate(lhs):
        groups[a].append(n)
    logp = [0.0] * len(names)
    for members in groups.values():
        z = math.log(sum(math.exp(weights[m]) for m in members))
        for m in members:
            logp[m] = weights[m] - z
    return {name: lp for name, lp in zip(names, logp, strict=True)}


def enumerate_cfg(words, table, binary=BINARY, unary=UNARY, lexicon=LEXICON, start="S"):
    """Every derivation of ``start`` over ``words``: a list of (log weight, bracketed)."""
    memo: dict = {}

    def derivs(i, j, a):
        key = (i, j, a)
        if key in memo:
            return memo[key]
        out = []
        if j == i + 1:
            for w, c in lexicon:
                if c == a and w == words[i]:
                    out.append((table[("lex", (w, c))], f"({a} {w})"))
        for lhs, b in unary:
            if lhs == a:
                for lp, t in derivs(i, j, b):
                    out.append((table[("un", (lhs, b))] + lp, f"({a} {t})"))
        for lhs, b, c in binary:
            if lhs != a:
                continue
            for k in range(i + 1, j):
                for (lb, tb), (lc, tc) in itertools.product(derivs(i, k, b), derivs(k, j, c)):
                    out.append((table[("bin", (lhs, b, c))] + lb + lc, f"({a} {tb} {tc})"))
        memo[key] = out
        return out

    return derivs(0, len(words), start)


def cyk_recognises(words, binary=BINARY, unary=UNARY, lexicon=LEXICON, start="S") -> bool:
    """A textbook CYK recogniser (sets of nonterminals per span, unary closure)."""
    n = len(words)
    cell: dict[tuple[int, int], set[str]] = {}

    def close(cats: set[str]) -> set[str]:
        changed = True
        while changed:
            changed = False
            for a, b in unary:
                if b in cats and a not in cats:
                    cats.add(a)
                    changed = True
        return cats

    for i, w in enumerate(words):
        cell[(i, i + 1)] = close({c for ww, c in lexicon if ww == w})
    for width in range(2, n + 1):
        for i in range(n - width + 1):
            j = i + width
            cats = set()
            for k in range(i + 1, j):
                for a, b, c in binary:
                    if b in cell[(i, k)] and c in cell[(k, j)]:
                        cats.add(a)
            cell[(i, j)] = close(cats)
    return start in cell[(0, n)]


def logsumexp(xs):
    if not xs:
        return -math.inf
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


# -- categorial grammar: application and composition over slash categories ----------


def fwd(x, y):
    return ("Fwd", x, y)  # X/Y


def bwd(x, y):
    return ("Bwd", x, y)  # X\Y (argument Y on the left)


CCG_RULES = [
    ("fwd_app", lambda a, b: a[1] if _is(a, "Fwd") and a[2] == b else None),
    ("bwd_app", lambda a, b: b[1] if _is(b, "Bwd") and b[2] == a else None),
    (
        "fwd_comp",
        lambda a, b: fwd(a[1], b[2]) if _is(a, "Fwd") and _is(b, "Fwd") and a[2] == b[1] else None,
    ),
    (
        "bwd_comp",
        lambda a, b: bwd(b[1], a[2]) if _is(a, "Bwd") and _is(b, "Bwd") and b[2] == a[1] else None,
    ),
    (
        "fwd_xcomp",
        lambda a, b: bwd(a[1], b[2]) if _is(a, "Fwd") and _is(b, "Bwd") and a[2] == b[1] else None,
    ),
    (
        "bwd_xcomp",
        lambda a, b: fwd(b[1], a[2]) if _is(a, "Fwd") and _is(b, "Bwd") and b[2] == a[1] else None,
    ),
]


def _is(t, f):
    return isinstance(t, tuple) and t[0] == f


def ccg_system(
    lexicon, semiring="Counting", depth=3, learnable=False, start="S"
) -> DeductionSystem:
    """The six application/composition combinators as deduction rules."""
    r = [
        Rule("fwd_app", (span(I, K, fwd(X, Y)), span(K, J, Y)), span(I, J, X), learnable),
        Rule("bwd_app", (span(I, K, Y), span(K, J, bwd(X, Y))), span(I, J, X), learnable),
        Rule(
            "fwd_comp",
            (span(I, K, fwd(X, Y)), span(K, J, fwd(Y, Z))),
            span(I, J, fwd(X, Z)),
            learnable,
        ),
        Rule(
            "bwd_comp",
            (span(I, K, bwd(Y, Z)), span(K, J, bwd(X, Y))),
            span(I, J, bwd(X, Z)),
            learnable,
        ),
        Rule(
            "fwd_xcomp",
            (span(I, K, fwd(X, Y)), span(K, J, bwd(Y, Z))),
            span(I, J, bwd(X, Z)),
            learnable,
        ),
        Rule(
            "bwd_xcomp",
            (span(I, K, fwd(Y, Z)), span(K, J, bwd(X, Y))),
            span(I, J, fwd(X, Z)),
            learnable,
        ),
    ]
    lex = tuple(LexEntry(w, c, w, learnable) for w, c in lexicon)
    return DeductionSystem("CCG", (), tuple(r), lex, semiring, start, depth)


def nesting(t):
    return 1 + max(nesting(a) for a in t[1:]) if isinstance(t, tuple) else 0


def enumerate_ccg(words, lexicon, depth, start="S"):
    """The number of derivations of ``start`` by the combinator functions above."""
    memo: dict = {}

    def derivs(i, j):  # category -> number of derivations
        if (i, j) in memo:
            return memo[(i, j)]
        out: dict = defaultdict(int)
        if j == i + 1:
            for w, c in lexicon:
                if w == words[i]:
                    out[c] += 1
        for k in range(i + 1, j):
            for (a, na), (b, nb) in itertools.product(derivs(i, k).items(), derivs(k, j).items()):
                for _, combine in CCG_RULES:
                    c = combine(a, b)
                    if c is not None and nesting(c) <= depth:
                        out[c] += na * nb
        memo[(i, j)] = dict(out)
        return memo[(i, j)]

    return derivs(0, len(words)).get(start, 0)
