"""The plain-data form of a ``deduction`` block: what the compiler emits and the
runtime builds from (no torch, no source positions)."""

from __future__ import annotations

from dataclasses import dataclass

from quivers.core.deduction.terms import Term, Var, variables

# Semiring names as written in ``[semiring=...]`` -> the canonical name.
SEMIRINGS: dict[str, str] = {
    "LogProb": "LogProb",
    "log_prob": "LogProb",
    "Viterbi": "Viterbi",
    "max_plus": "Viterbi",
    "MaxPlus": "Viterbi",
    "Boolean": "Boolean",
    "boolean": "Boolean",
    "Real": "Real",
    "real": "Real",
    "Counting": "Counting",
    "counting": "Counting",
}

# The constructor of the items a lexicon entry seeds: ``span(i, i + 1, Category)``
# (or ``span(i, i + 1, Category, form)`` when the rules use four-place spans).
SPAN = "span"
DEFAULT_DEPTH = 4


@dataclass(frozen=True)
class Rule:
    """``rule name : premise, ... |- conclusion [#[learnable]]``."""

    name: str
    premises: tuple[Term, ...]
    conclusion: Term
    learnable: bool = False

    @property
    def variables(self) -> tuple[Var, ...]:
        seen: dict[Var, None] = {}
        for t in (*self.premises, self.conclusion):
            for v in variables(t):
                seen.setdefault(v)
        return tuple(seen)

    def unbound(self) -> tuple[Var, ...]:
        """Conclusion variables no premise binds (the checker reports them)."""
        bound = {v for p in self.premises for v in variables(p)}
        return tuple(v for v in dict.fromkeys(variables(self.conclusion)) if v not in bound)


@dataclass(frozen=True)
class LexEntry:
    """``"word" : Category = form [#[learnable]]``."""

    word: str
    category: Term
    form: Term
    learnable: bool = False


@dataclass(frozen=True)
class DeductionSystem:
    name: str
    atoms: tuple[str, ...]
    rules: tuple[Rule, ...]
    lexicon: tuple[LexEntry, ...]
    semiring: str = "LogProb"
    start: str = "S"
    depth: int = DEFAULT_DEPTH

    @property
    def span_arity(self) -> int:
        """3 (``span(I, J, Cat)``) unless a rule uses four-place spans (with a form)."""
        for rule in self.rules:
            for t in (*rule.premises, rule.conclusion):
                if isinstance(t, tuple) and t[0] == SPAN and len(t) - 1 == 4:
                    return 4
        return 3

    def seed(self, entry: LexEntry, i: Term, j: Term) -> Term:
        """The chart item a lexicon entry seeds at span [i, j)."""
        if self.span_arity == 4:
            return (SPAN, i, j, entry.category, entry.form)
        return (SPAN, i, j, entry.category)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The lexicon's words in order of first entry (token id = index)."""
        return tuple(dict.fromkeys(e.word for e in self.lexicon))

    @property
    def weight_names(self) -> tuple[str, ...]:
        """The learnable weights in parameter order: rules, then lexicon entries."""
        from quivers.core.deduction.terms import show

        names = [r.name for r in self.rules if r.learnable]
        names += [f'"{e.word}" : {show(e.category)}' for e in self.lexicon if e.learnable]
        return tuple(names)
