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
    CORR_CHOLESKY = "corr_cholesky"  # lower Cholesky factors of correlation matrices


# Which domains lie inside which: a family whose support is inside the codomain's
# kind is accepted (a LogitNormal gate into `Real d`), never the converse.
CONTAINED_IN: dict[Domain, frozenset[Domain]] = {
    Domain.REAL: frozenset({Domain.REAL}),
    Domain.POSITIVE: frozenset({Domain.POSITIVE, Domain.REAL}),
    Domain.UNIT: frozenset({Domain.UNIT, Domain.POSITIVE, Domain.REAL}),
    Domain.SIMPLEX: frozenset({Domain.SIMPLEX, Domain.UNIT, Domain.POSITIVE, Domain.REAL}),
    Domain.COUNT: frozenset({Domain.COUNT, Domain.REAL}),
    Domain.BINARY: frozenset({Domain.BINARY, Domain.COUNT, Domain.REAL}),
    Domain.CORR_CHOLESKY: frozenset({Domain.CORR_CHOLESKY, Domain.REAL}),
}


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
    # True for a (d, d) matrix parameter (a MultivariateNormal's scale_tril).
    matrix: bool = False
    # False for a parameter that must be a given number (a Binomial's total_count,
    # a Uniform's bounds): a kernel cannot learn it, so it is fixed by an option.
    learnable: bool = True


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[Param, ...]
    support: Domain
    doc: str
    # inline only: the value is a matrix per draw (LKJCholesky, MatrixNormal), which
    # no codomain of a kernel describes
    inline_only: bool = False

    @property
    def arity(self) -> int:
        return len(self.params)

    @property
    def discrete(self) -> bool:
        return self.support in (Domain.FINITE, Domain.BINARY, Domain.COUNT)

    @property
    def multivariate(self) -> bool:
        """The value is one vector (or matrix) per draw, not one number per coordinate."""
        return any(p.vector or p.matrix for p in self.params) or self.inline_only

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.name for p in self.params)})"


def _f(name: str, support: Domain, doc: str, *params: Param, inline_only: bool = False) -> Family:
    return Family(name, params, support, doc, inline_only)


def fits(support: Domain, kind: Domain) -> bool:
    """Whether values with ``support`` are values of a space of ``kind``."""
    return kind in CONTAINED_IN.get(support, frozenset({support}))


R, P, U, S = Domain.REAL, Domain.POSITIVE, Domain.UNIT, Domain.SIMPLEX
N = Domain.COUNT

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
        # ---- added for the published gallery (issue 11); see docs/language.md
        _f(
            "Uniform",
            R,
            "Uniform on (low, high); the bounds are numbers.",
            Param("low", R, learnable=False),
            Param("high", R, learnable=False),
        ),
        _f("HalfCauchy", P, "|Cauchy(0, scale)|.", Param("scale", P)),
        _f("Cauchy", R, "Cauchy with location loc and scale.", Param("loc", R), Param("scale", P)),
        _f(
            "HalfStudentT",
            P,
            "|StudentT(df, 0, scale)|.",
            Param("df", P),
            Param("scale", P),
        ),
        _f(
            "InverseGamma",
            P,
            "1/X for X ~ Gamma(concentration, rate).",
            Param("concentration", P),
            Param("rate", P),
        ),
        _f(
            "Weibull",
            P,
            "Weibull with the given scale and shape concentration.",
            Param("scale", P),
            Param("concentration", P),
        ),
        _f("Laplace", R, "Double exponential.", Param("loc", R), Param("scale", P)),
        _f(
            "Logistic",
            R,
            "Logistic with location loc and scale.",
            Param("loc", R),
            Param("scale", P),
        ),
        _f("Gumbel", R, "Gumbel (type I extreme value).", Param("loc", R), Param("scale", P)),
        _f(
            "Pareto",
            P,
            "Pareto type I on [scale, inf) with tail index alpha; scale is a number.",
            Param("scale", P, learnable=False),
            Param("alpha", P),
        ),
        _f(
            "GeneralizedPareto",
            R,
            "Generalized Pareto from loc; bounded above when concentration < 0. "
            "loc and concentration are numbers.",
            Param("loc", R, learnable=False),
            Param("scale", P),
            Param("concentration", R, learnable=False),
        ),
        _f(
            "Kumaraswamy",
            U,
            "Kumaraswamy on (0, 1).",
            Param("concentration1", P),
            Param("concentration0", P),
        ),
        _f(
            "Chi",
            P,
            "Square root of a chi-squared variable with df degrees of freedom.",
            Param("df", P),
        ),
        _f(
            "FisherSnedecor",
            P,
            "F distribution with df1 and df2 degrees of freedom.",
            Param("df1", P),
            Param("df2", P),
        ),
        _f(
            "TruncatedNormal",
            R,
            "Normal(loc, scale) restricted to (low, high); the bounds are numbers.",
            Param("loc", R),
            Param("scale", P),
            Param("low", R, learnable=False),
            Param("high", R, learnable=False),
        ),
        _f(
            "NegativeBinomial",
            N,
            "Successes before total_count failures, success probability probs.",
            Param("total_count", P),
            Param("probs", U),
        ),
        _f(
            "BetaBinomial",
            N,
            "Binomial(total_count, p) with p ~ Beta(concentration1, concentration0).",
            Param("concentration1", P),
            Param("concentration0", P),
            Param("total_count", N, learnable=False),
        ),
        _f(
            "Binomial",
            N,
            "Successes in total_count trials with success probability probs.",
            Param("total_count", N, learnable=False),
            Param("probs", U),
        ),
        _f(
            "ContinuousBernoulli",
            U,
            "Continuous Bernoulli on [0, 1] (Loaiza-Ganem and Cunningham, 2019).",
            Param("probs", U),
        ),
        _f(
            "RelaxedBernoulli",
            U,
            "Concrete relaxation of a Bernoulli at the given temperature.",
            Param("temperature", P, learnable=False),
            Param("probs", U),
        ),
        _f(
            "MultivariateNormal",
            R,
            "Gaussian vector with mean loc and lower Cholesky factor scale_tril of its covariance.",
            Param("loc", R, vector=True),
            Param("scale_tril", R, matrix=True),
        ),
        _f(
            "MatrixNormal",
            R,
            "Gaussian matrix: vec(X) ~ Normal(vec(loc), V kron U) with U = L_r L_r', V = L_c L_c'.",
            Param("loc", R, matrix=True),
            Param("scale_tril_row", R, matrix=True),
            Param("scale_tril_column", R, matrix=True),
            inline_only=True,
        ),
        _f(
            "LKJCholesky",
            Domain.CORR_CHOLESKY,
            "Cholesky factors of d x d correlation matrices (Lewandowski et al., 2009); "
            "d is the annotation's dimension.",
            Param("concentration", P),
            inline_only=True,
        ),
        _f(
            "Mixture",
            R,  # in fact the components' common support (see `mixture_component_problem`)
            "Finite mixture, coordinate by coordinate: component k (a family call) with "
            "probability weights[k]; every component has the same support, which is the "
            "mixture's. Log density: logsumexp_k(log weights[k] + log p_k(x)).",
            Param("weights", S, vector=True),
            Param("components", R, vector=True, learnable=False),
            inline_only=True,
        ),
    )
}

MIXTURE = "Mixture"
# Families whose support depends on their arguments (bounds and counts given as numbers).
DEPENDENT_SUPPORT = frozenset(
    {"Uniform", "TruncatedNormal", "Pareto", "GeneralizedPareto", "Binomial", "BetaBinomial"}
)


def mixture_component_problem(family: Family) -> str | None:
    """Why ``family`` cannot be a component of a ``Mixture`` (None when it can).

    A component draws one number per coordinate (the mixture is taken coordinate by
    coordinate) and has a support fixed by its family, so that all components share
    the support the guides and MCMC unconstrain through."""
    if family.name == MIXTURE:
        return "mixtures do not nest (write the components of both in one list)"
    if family.multivariate:
        return f"{family.name} draws a whole vector or matrix, not one number per coordinate"
    if family.name in DEPENDENT_SUPPORT:
        return f"{family.name}'s support depends on its arguments"
    return None
