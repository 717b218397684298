"""First-order terms of a deduction system.

A term is an atom (``str``), a chart position (``int``), a variable (:class:`Var`) or
a compound ``(functor, arg1, ..., argn)`` (a tuple whose first element is the functor
name). Chart items are ground terms; rule premises and conclusions are patterns.
Matching a pattern against a ground item is unification with a ground term, so a
one-way matcher is all the agenda needs (Eisner & Blatz 2007, "Program transformations
for optimization of parsing algorithms and other weighted logic programs").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The stand-in for every chart position in the position-free view of a grammar
# (``lift``): not an identifier, so no atom can be spelt like it.
POS = "<pos>"


@dataclass(frozen=True, slots=True)
class Var:
    """A rule variable (``I``, ``X``, ``NP1``...)."""

    name: str

    def __repr__(self) -> str:
        return self.name


# str | int | Var | tuple (a compound); Any so that compound items index freely
Term = Any
Env = Mapping[Var, Term]


def match(pattern: Term, term: Term, env: dict[Var, Term]) -> dict[Var, Term] | None:
    """Extend ``env`` so that ``pattern`` under it equals the ground ``term``, or None.

    ``env`` is not modified; the result is a new dict when a variable gets bound.
    """
    if isinstance(pattern, Var):
        bound = env.get(pattern)
        if bound is None:
            out = dict(env)
            out[pattern] = term
            return out
        return env if bound == term else None
    if isinstance(pattern, tuple):
        if not isinstance(term, tuple) or len(term) != len(pattern) or term[0] != pattern[0]:
            return None
        for p, t in zip(pattern[1:], term[1:], strict=True):
            got = match(p, t, env)
            if got is None:
                return None
            env = got
        return env
    return env if pattern == term and type(pattern) is type(term) else None


def substitute(pattern: Term, env: Env) -> Term:
    """The pattern with every bound variable replaced (unbound ones stay variables)."""
    if isinstance(pattern, Var):
        return env.get(pattern, pattern)
    if isinstance(pattern, tuple):
        return (pattern[0], *(substitute(a, env) for a in pattern[1:]))
    return pattern


def is_ground(term: Term) -> bool:
    if isinstance(term, Var):
        return False
    if isinstance(term, tuple):
        return all(is_ground(a) for a in term[1:])
    return True


def variables(term: Term) -> Iterator[Var]:
    """The variables of ``term`` in order of first occurrence (with repeats)."""
    if isinstance(term, Var):
        yield term
    elif isinstance(term, tuple):
        for a in term[1:]:
            yield from variables(a)


def nesting(term: Term) -> int:
    """The size measure ``depth`` bounds: atoms and positions 0, ``F(a..)`` 1 + max."""
    if isinstance(term, tuple):
        return 1 + max((nesting(a) for a in term[1:]), default=0)
    return 0


def item_size(item: Term) -> int:
    """An item's size: the largest nesting of its arguments (the item's own functor
    does not count, so ``span(0, 1, NP)`` has size 0 and ``span(0, 1, Fwd(S, NP))`` 1)."""
    if isinstance(item, tuple):
        return max((nesting(a) for a in item[1:]), default=0)
    return 0


def lift(term: Term) -> Term:
    """The position-free view of a ground term: every position becomes :data:`POS`."""
    if isinstance(term, int):
        return POS
    if isinstance(term, tuple):
        return (term[0], *(lift(a) for a in term[1:]))
    return term


def show(term: Term) -> str:
    """The source spelling: ``Fwd(S, NP)``, ``span(0, 2, NP)``."""
    if isinstance(term, tuple):
        return f"{term[0]}({', '.join(show(a) for a in term[1:])})"
    if isinstance(term, Var):
        return term.name
    if term == POS:
        return "_"
    return str(term)
