"""Families: from raw parameter-source outputs to ``torch.distributions`` objects.

The parameter names, their domains and each family's support come from
``quivers.core.families.FAMILIES`` (shared with the checker). Raw, unconstrained
outputs are mapped into each parameter's domain: softplus for positive, sigmoid for
the unit interval, softmax for the simplex (kept as logits, which torch normalises).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch.distributions import constraints

from quivers.core.families import DEPENDENT_SUPPORT, FAMILIES, Domain, Family
from quivers.runtime import distributions as QD
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.ir import FinSetT, ObjT, flat_dim

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _logit_normal(loc, scale, validate_args=False):
    return D.TransformedDistribution(
        D.Normal(loc, scale, validate_args=validate_args),
        [D.SigmoidTransform()],
        validate_args=validate_args,
    )


def _lkj_cholesky(concentration, dim, validate_args=False):
    return D.LKJCholesky(dim, concentration, validate_args=validate_args)


def _multivariate_normal(loc, scale_tril, validate_args=False):
    return D.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=validate_args)


# family name -> torch constructor taking the family's parameters by keyword
_TORCH: dict[str, Callable[..., D.Distribution]] = {
    "Normal": D.Normal,
    "LogNormal": D.LogNormal,
    "HalfNormal": D.HalfNormal,
    "Exponential": D.Exponential,
    "Gamma": D.Gamma,
    "Beta": D.Beta,
    "LogitNormal": _logit_normal,
    "Bernoulli": D.Bernoulli,
    "Categorical": D.Categorical,
    "Poisson": QD.Poisson,
    "Dirichlet": D.Dirichlet,
    "StudentT": D.StudentT,
    "Uniform": D.Uniform,
    "HalfCauchy": D.HalfCauchy,
    "Cauchy": D.Cauchy,
    "HalfStudentT": QD.HalfStudentT,
    "InverseGamma": D.InverseGamma,
    "Weibull": D.Weibull,
    "Laplace": D.Laplace,
    "Logistic": QD.Logistic,
    "Gumbel": D.Gumbel,
    "Pareto": D.Pareto,
    "GeneralizedPareto": QD.GeneralizedPareto,
    "Kumaraswamy": D.Kumaraswamy,
    "Chi": QD.Chi,
    "FisherSnedecor": D.FisherSnedecor,
    "TruncatedNormal": QD.TruncatedNormal,
    "NegativeBinomial": D.NegativeBinomial,
    "BetaBinomial": QD.BetaBinomial,
    "Binomial": D.Binomial,
    "ContinuousBernoulli": D.ContinuousBernoulli,
    "RelaxedBernoulli": D.RelaxedBernoulli,
    "MultivariateNormal": _multivariate_normal,
    "MatrixNormal": QD.MatrixNormal,
    "LKJCholesky": _lkj_cholesky,
    "Mixture": QD.Mixture,  # built from its components' distributions (kernels.MixtureFamily)
}
# families whose support depends on parameter values (bounds given as numbers)
_DEPENDENT_SUPPORT = DEPENDENT_SUPPORT
assert set(_TORCH) == set(FAMILIES), "runtime families out of sync with core.families"


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise QvrBuildError(
            f"unknown family '{name}'; expected one of {sorted(FAMILIES)}"
        ) from None


def domain_constraint(domain: Domain, n: int | None = None) -> constraints.Constraint:
    """The torch constraint of a value domain (``n`` is the size of a finite set)."""
    if domain is Domain.FINITE:
        return constraints.integer_interval(0, (n or 1) - 1)
    return {
        Domain.REAL: constraints.real,
        Domain.POSITIVE: constraints.positive,
        Domain.UNIT: constraints.unit_interval,
        Domain.SIMPLEX: constraints.simplex,
        Domain.BINARY: constraints.boolean,
        Domain.COUNT: constraints.nonnegative_integer,
        Domain.CORR_CHOLESKY: constraints.corr_cholesky,
    }[domain]


def constrain(raw: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Map unconstrained reals into a parameter's domain."""
    if domain is Domain.POSITIVE:
        return F.softplus(raw)
    if domain is Domain.UNIT:
        return torch.sigmoid(raw)
    if domain is Domain.SIMPLEX:
        return torch.softmax(raw, dim=-1)
    return raw


def make_dist(
    family: str, params: dict[str, torch.Tensor | float], dim: int | None = None
) -> D.Distribution:
    """A torch distribution (no argument validation: the runtime validates data).

    ``dim`` is the matrix size of an LKJCholesky draw (from the value's type).
    """
    like = next((v for v in params.values() if isinstance(v, torch.Tensor)), None)
    if like is not None and family != "Normal":
        # numbers as tensors of the model's dtype (some torch families need tensors)
        params = {
            k: v if isinstance(v, torch.Tensor) else like.new_tensor(v) for k, v in params.items()
        }
    if family == "LKJCholesky":
        return _TORCH[family](**params, dim=dim or 1, validate_args=False)
    return _TORCH[family](**params, validate_args=False)


def lower_cholesky(raw: torch.Tensor, d: int) -> torch.Tensor:
    """A lower-triangular factor with a positive diagonal from d*d raw columns."""
    m = raw.unflatten(-1, (d, d))
    diag = F.softplus(m.diagonal(dim1=-2, dim2=-1)) + 1e-5
    return m.tril(-1) + torch.diag_embed(diag)


def support_of(dist: D.Distribution, family: Family, n: int | None) -> constraints.Constraint:
    """A site's support: the distribution's own where it depends on the parameters."""
    if family.name in _DEPENDENT_SUPPORT or family.inline_only:
        support = dist.support
        assert support is not None
        return support
    return domain_constraint(family.support, n)


class FamilyLayout:
    """How a kernel's raw parameter vector maps to a family over codomain ``cod``.

    Every free (not ``fixed``) parameter takes ``width`` raw columns: the codomain's
    dimension for per-coordinate parameters, the vector's length for ``vector`` ones,
    and 1 when the value is one id of a finite set (Bernoulli/Poisson over FinSet).
    """

    def __init__(self, family: str, cod: ObjT, fixed: dict[str, float]) -> None:
        self.family = get_family(family)
        self.name = family
        self.fixed = dict(fixed)
        for k in self.fixed:
            if self.family.param(k) is None:
                raise QvrBuildError(f"{family} has no parameter '{k}' ({self.family.signature()})")
        if self.family.inline_only:
            raise QvrBuildError(
                f"{family} draws a matrix; use it inline: sample v : T <- {family}(...)"
            )
        for p in self.family.params:
            if not p.learnable and p.name not in self.fixed:
                raise QvrBuildError(
                    f"a {family} kernel cannot learn its {p.name}: fix it with [{p.name}=...]"
                )
        self.finite_value = isinstance(cod, FinSetT)
        vector = any(p.vector for p in self.family.params)
        if family == "Categorical" and not self.finite_value:
            raise QvrBuildError("Categorical needs a finite codomain")
        if self.finite_value and family not in ("Categorical", "Bernoulli", "Poisson"):
            raise QvrBuildError(f"{family} cannot have the finite codomain {cod}")
        self.n_values = cod.size if isinstance(cod, FinSetT) else None
        # one id per row takes a single column; a vector parameter its whole length
        width = (cod.size if vector else 1) if isinstance(cod, FinSetT) else flat_dim(cod)
        # a continuous codomain of scalar families is an Independent product over its axis
        self.event_sum = not self.finite_value and not self.family.multivariate
        self.free = [p for p in self.family.params if p.name not in self.fixed]
        self.width = width
        # a matrix parameter (a scale_tril) takes width * width raw columns
        self.widths = [width * width if p.matrix else width for p in self.free]
        self.n_raw = sum(self.widths)
        self.squeeze = self.finite_value and not vector
        self._fast_normal = family == "Normal"
        self._support = self._fixed_support()

    # ------------------------------------------------------------ parameters
    def params(self, raw: torch.Tensor) -> dict[str, torch.Tensor | float]:
        """Constrained parameters from raw columns ``(..., n_raw)``."""
        out: dict[str, torch.Tensor | float] = dict(self.fixed)
        chunks = raw.split(self.widths, dim=-1) if len(self.free) > 1 else (raw,)
        for p, r in zip(self.free, chunks, strict=True):
            if self.squeeze:
                r = r.squeeze(-1)
            if p.matrix:
                out[p.name] = lower_cholesky(r, self.width)
            elif p.domain is Domain.SIMPLEX:
                out["logits"] = r  # torch normalises logits: softmax without the round trip
            elif p.domain is Domain.UNIT and p.name == "probs":
                out["logits"] = r  # the sigmoid of the raw output is the probability
            else:
                out[p.name] = constrain(r, p.domain)
        return out

    def _fixed_support(self) -> constraints.Constraint:
        """The support; for bounded families, from their fixed (numeric) bounds."""
        f, name = self.fixed, self.name
        if name in ("Uniform", "TruncatedNormal"):
            return constraints.interval(f["low"], f["high"])
        if name == "Pareto":
            return constraints.greater_than_eq(f["scale"])
        if name in ("Binomial", "BetaBinomial"):
            return constraints.integer_interval(0, int(f["total_count"]))
        if name == "GeneralizedPareto":
            if f["concentration"] >= 0:
                return constraints.greater_than_eq(f["loc"])
            if "scale" not in f:
                raise QvrBuildError(
                    "a GeneralizedPareto kernel with concentration < 0 is bounded by its "
                    "scale: fix it with [scale=...]"
                )
            return constraints.interval(f["loc"], f["loc"] - f["scale"] / f["concentration"])
        return domain_constraint(self.family.support, self.n_values)

    def dist(self, params: dict[str, torch.Tensor | float]) -> D.Distribution:
        return make_dist(self.name, params)

    # ------------------------------------------------------------ fused ops
    def sample(
        self, params: dict[str, torch.Tensor | float], lead: tuple[int, ...], ref: torch.Tensor
    ) -> torch.Tensor:
        """One draw (reparameterised where the family allows) for leading axes ``lead``.

        ``ref`` gives dtype/device when every parameter is a fixed constant.
        """
        if self._fast_normal:
            loc, scale = params["loc"], params["scale"]
            if not isinstance(loc, torch.Tensor):
                loc = ref.new_full((*lead, self.width), loc)
            return loc + scale * torch.randn_like(loc)
        d = self.dist(params)
        v = d.rsample() if d.has_rsample else d.sample()
        return self._to_value(v)

    def _to_value(self, v: torch.Tensor) -> torch.Tensor:
        return v.long() if self.finite_value else v

    def log_prob(
        self, params: dict[str, torch.Tensor | float], value: torch.Tensor
    ) -> torch.Tensor:
        """log density of ``value``, summed over the codomain's axis: shape = leading axes."""
        if self._fast_normal:
            loc, scale = params["loc"], params["scale"]
            z = (value - loc) / scale
            log_scale = math.log(scale) if isinstance(scale, float) else torch.log(scale)
            lp = -0.5 * z * z - log_scale - _HALF_LOG_2PI
        else:
            v = (
                value.to(self._float_dtype(params))
                if self.finite_value and self.name != "Categorical"
                else value
            )
            lp = self.dist(params).log_prob(v)
        return lp.sum(-1) if self.event_sum else lp

    @staticmethod
    def _float_dtype(params: dict[str, torch.Tensor | float]) -> torch.dtype:
        for v in params.values():
            if isinstance(v, torch.Tensor):
                return v.dtype
        return torch.get_default_dtype()

    def support(self) -> constraints.Constraint:
        return self._support
