"""The distribution families of QVR, as plain data.

Both the checker (which validates arities, options and supports) and the runtime
(which builds ``torch.distributions`` objects) read this one table, so the two can
never disagree about a family's parameters. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Domain(StrEnum):
    """Where a parameter or a value lives; names the constraint it satisfies."""

    REAL = "real"
    POSITIVE = "positive"
    UNIT = "unit"  # the open interval (0, 1)
    SIMPLEX = "simplex"
    FINITE = "finite"  # integers 0..n-1
    BINARY = "binary"  # {0, 1}
    COUNT = "count"  # non-negative integers


def out_of_domain(domain: Domain, value: float) -> str | None:
    """What a literal parameter value violates (``"must be > 0"``), or None if it fits.

    Only the domains a single number can violate are checked here; a vector domain
    (the simplex) cannot be written as one literal.
    """
    if domain == Domain.POSITIVE and not value > 0:
        return "must be > 0"
    if domain == Domain.UNIT and not 0 < value < 1:
        return "must lie in (0, 1)"
    return None


@dataclass(frozen=True)
class Param:
    name: str
    domain: Domain
    # True when the parameter is a whole vector (a Categorical's probabilities, a
    # Dirichlet's concentration) rather than one number per output coordinate.
    vector: bool = False


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[Param, ...]
    support: Domain
    doc: str

    @property
    def arity(self) -> int:
        return len(self.params)

    @property
    def discrete(self) -> bool:
        return self.support in (Domain.FINITE, Domain.BINARY, Domain.COUNT)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.name for p in self.params)})"


def _f(name: str, support: Domain, doc: str, *params: Param) -> Family:
    return Family(name, params, support, doc)


R, P, U, S = Domain.REAL, Domain.POSITIVE, Domain.UNIT, Domain.SIMPLEX

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        _f(
            "Normal",
            R,
            "Gaussian with mean loc and standard deviation scale.",
            Param("loc", R),
            Param("scale", P),
        ),
        _f(
            "LogNormal",
            P,
            "exp of a Normal(loc, scale) variable.",
            Param("loc", R),
            Param("scale", P),
        ),
        _f("HalfNormal", P, "|Normal(0, scale)|.", Param("scale", P)),
        _f("Exponential", P, "Exponential with the given rate.", Param("rate", P)),
        _f(
            "Gamma",
            P,
            "Gamma with shape concentration and inverse scale rate.",
            Param("concentration", P),
            Param("rate", P),
        ),
        _f("Beta", U, "Beta on (0, 1).", Param("concentration1", P), Param("concentration0", P)),
        _f(
            "LogitNormal",
            U,
            "sigmoid of a Normal(loc, scale) variable.",
            Param("loc", R),
            Param("scale", P),
        ),
        _f(
            "Bernoulli",
            Domain.BINARY,
            "One coin flip with success probability probs.",
            Param("probs", U),
        ),
        _f(
            "Categorical",
            Domain.FINITE,
            "One draw from a finite set with probabilities probs.",
            Param("probs", S, vector=True),
        ),
        _f("Poisson", Domain.COUNT, "Counts with the given rate.", Param("rate", P)),
        _f(
            "Dirichlet", S, "Distribution over the simplex.", Param("concentration", P, vector=True)
        ),
        _f(
            "StudentT",
            R,
            "Student's t with df degrees of freedom.",
            Param("df", P),
            Param("loc", R),
            Param("scale", P),
        ),
    )
}
