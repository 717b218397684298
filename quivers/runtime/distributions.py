"""Families that ``torch.distributions`` does not have, written once.

Each is a ``torch.distributions.Distribution`` with ``log_prob``, ``support`` and a
sampler (reparameterised where the family allows), tested against SciPy's densities
in ``tests/runtime/test_families.py``. References: Johnson, Kotz and Balakrishnan,
*Continuous Univariate Distributions* (1994-5); Gupta and Nagar, *Matrix Variate
Distributions* (2000) for the matrix normal.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

_LOG_2 = math.log(2.0)
_EMPTY = torch.Size()
_LOG_2PI = math.log(2.0 * math.pi)


class Poisson(D.Poisson):
    """torch's Poisson, with a log density whose gradient stays finite at rate 0.

    Rate 0 is the point mass at 0 (log p(0) = -rate, log p(k > 0) = -inf), which a
    zero-inflated model's "off" branch (``Poisson(rate * (1 - zero))``) reaches.
    torch's ``xlogy(k, rate)`` has gradient k / rate there: 0/0 or k/0, NaN or
    infinite, and the NaN survives even where the branch has weight 0.
    """

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        zero = rate == 0
        safe = torch.where(zero, torch.ones_like(rate), rate)  # log(1) = 0 at rate 0
        lp = torch.xlogy(value, safe) - rate - torch.lgamma(value + 1)
        return torch.where(zero & (value > 0), torch.full_like(lp, -math.inf), lp)


class HalfStudentT(D.TransformedDistribution):
    """|T| for T ~ StudentT(df, 0, scale): density 2 t(x), x >= 0."""

    arg_constraints = {"df": constraints.positive, "scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, df, scale, validate_args=None):
        base = D.StudentT(df, torch.zeros_like(torch.as_tensor(scale)), scale, validate_args=False)
        super().__init__(base, [D.AbsTransform()], validate_args=validate_args)
        self.df, self.scale = base.df, base.scale

    def log_prob(self, value):
        return self.base_dist.log_prob(value) + _LOG_2


class Logistic(D.TransformedDistribution):
    """loc + scale * logit(U), U ~ Uniform(0, 1)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        zero, one = torch.zeros_like(self.loc), torch.ones_like(self.loc)
        base = D.Uniform(zero, one, validate_args=False)
        transforms = [D.SigmoidTransform().inv, D.AffineTransform(self.loc, self.scale)]
        super().__init__(base, transforms, validate_args=validate_args)

    def log_prob(self, value):
        z = (value - self.loc) / self.scale
        return -z - 2.0 * torch.nn.functional.softplus(-z) - torch.log(self.scale)

    def rsample(self, sample_shape=_EMPTY):
        # clamp away from 0 and 1: logit(0) = -inf
        u = self.base_dist.rsample(sample_shape).clamp(1e-7, 1 - 1e-7)
        return self.loc + self.scale * (torch.log(u) - torch.log1p(-u))


class Chi(D.Distribution):
    """sqrt(X) for X ~ Chi2(df)."""

    arg_constraints = {"df": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df, validate_args=None):
        self.df = torch.as_tensor(df, dtype=torch.get_default_dtype())
        self._chi2 = D.Chi2(self.df, validate_args=False)
        super().__init__(self.df.shape, validate_args=validate_args)

    def rsample(self, sample_shape=_EMPTY):
        return self._chi2.rsample(sample_shape).clamp_min(1e-30).sqrt()

    def log_prob(self, value):
        k = self.df
        return (
            (k - 1.0) * torch.log(value)
            - 0.5 * value * value
            - (0.5 * k - 1.0) * _LOG_2
            - torch.lgamma(0.5 * k)
        )


class TruncatedNormal(D.Distribution):
    """Normal(loc, scale) conditioned on (low, high); sampled by inverting the CDF."""

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "low": constraints.real,
        "high": constraints.real,
    }
    has_rsample = True

    def __init__(self, loc, scale, low, high, validate_args=None):
        self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        self._a = (self.low - self.loc) / self.scale
        self._b = (self.high - self.loc) / self.scale
        self._cdf_a = torch.special.ndtr(self._a)
        self._cdf_b = torch.special.ndtr(self._b)
        # log(Phi(b) - Phi(a)) computed on the side of the mean that keeps precision
        upper = self._a > 0
        self._log_z = torch.where(
            upper,
            torch.log(torch.special.ndtr(-self._a) - torch.special.ndtr(-self._b)),
            torch.log(self._cdf_b - self._cdf_a),
        )
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    def rsample(self, sample_shape=_EMPTY):
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        p = self._cdf_a + u * (self._cdf_b - self._cdf_a)
        eps = torch.finfo(self.loc.dtype).eps
        z = torch.special.ndtri(p.clamp(eps, 1 - eps))
        return (self.loc + self.scale * z).clamp(self.low, self.high)

    def log_prob(self, value):
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - 0.5 * _LOG_2PI - torch.log(self.scale) - self._log_z


class BetaBinomial(D.Distribution):
    """Binomial(total_count, p) with p ~ Beta(concentration1, concentration0)."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": constraints.nonnegative_integer,
    }

    def __init__(self, concentration1, concentration0, total_count, validate_args=None):
        self.concentration1, self.concentration0, self.total_count = broadcast_all(
            concentration1, concentration0, total_count
        )
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    def sample(self, sample_shape=_EMPTY):
        with torch.no_grad():
            p = D.Beta(self.concentration1, self.concentration0).sample(sample_shape)
            return D.Binomial(self.total_count.expand_as(p), p).sample()

    def log_prob(self, value):
        n, a, b = self.total_count, self.concentration1, self.concentration0
        return (
            torch.lgamma(n + 1)
            - torch.lgamma(value + 1)
            - torch.lgamma(n - value + 1)
            + _log_beta(value + a, n - value + b)
            - _log_beta(a, b)
        )


def _log_beta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


class MatrixNormal(D.Distribution):
    """X = loc + L_r Z L_c' with Z standard normal: vec(X) ~ N(vec(loc), V kron U)."""

    arg_constraints = {
        "loc": constraints.real,
        "scale_tril_row": constraints.lower_cholesky,
        "scale_tril_column": constraints.lower_cholesky,
    }
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, loc, scale_tril_row, scale_tril_column, validate_args=None):
        self.loc = loc
        self.scale_tril_row, self.scale_tril_column = scale_tril_row, scale_tril_column
        n, p = loc.shape[-2:]
        if scale_tril_row.shape[-2:] != (n, n) or scale_tril_column.shape[-2:] != (p, p):
            raise ValueError(
                f"MatrixNormal: loc {tuple(loc.shape)} needs scale_tril_row ({n}, {n}) and "
                f"scale_tril_column ({p}, {p}), got {tuple(scale_tril_row.shape)} and "
                f"{tuple(scale_tril_column.shape)}"
            )
        batch = torch.broadcast_shapes(
            loc.shape[:-2], scale_tril_row.shape[:-2], scale_tril_column.shape[:-2]
        )
        super().__init__(batch, loc.shape[-2:], validate_args=validate_args)

    def rsample(self, sample_shape=_EMPTY):
        shape = self._extended_shape(sample_shape)
        z = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale_tril_row @ z @ self.scale_tril_column.transpose(-1, -2)

    def log_prob(self, value):
        n, p = self.loc.shape[-2:]
        diff = value - self.loc
        # A = L_r^{-1} (X - M) L_c^{-T}; the quadratic form is ||A||_F^2
        a = torch.linalg.solve_triangular(self.scale_tril_row, diff, upper=False)
        a = torch.linalg.solve_triangular(
            self.scale_tril_column, a.transpose(-1, -2), upper=False
        ).transpose(-1, -2)
        log_det_r = self.scale_tril_row.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_det_c = self.scale_tril_column.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return -0.5 * (a * a).sum((-2, -1)) - 0.5 * n * p * _LOG_2PI - p * log_det_r - n * log_det_c


class GeneralizedPareto(D.Distribution):
    """Generalized Pareto (Pickands, 1975) from loc with the given scale and shape.

    Written here rather than taken from torch, whose version mixes dtypes in float64.
    Support [loc, inf) for concentration >= 0, [loc, loc - scale / concentration]
    otherwise; sampled by inverting the CDF.
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "concentration": constraints.real,
    }
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        c = self.concentration
        if bool((c >= 0).all()):
            return constraints.greater_than_eq(self.loc)
        if bool((c < 0).all()):
            return constraints.interval(self.loc, self.loc - self.scale / c)
        raise ValueError("GeneralizedPareto: concentrations of both signs have no one support")

    def _safe_c(self):
        c = self.concentration
        small = c.abs() < 1e-8
        return small, torch.where(small, torch.ones_like(c), c)

    def rsample(self, sample_shape=_EMPTY):
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(1e-12, 1 - 1e-7)
        small, c = self._safe_c()
        tail = -torch.log1p(-u)  # the c -> 0 limit: an exponential
        z = torch.where(small, tail, torch.expm1(c * tail) / c)
        return self.loc + self.scale * z

    def log_prob(self, value):
        z = (value - self.loc) / self.scale
        small, c = self._safe_c()
        body = -(1.0 / c + 1.0) * torch.log1p(c * z)
        return torch.where(small, -z, body) - torch.log(self.scale)


class Mixture(D.Distribution):
    """A finite mixture taken coordinate by coordinate (McLachlan & Peel, *Finite
    Mixture Models*, 2000): each coordinate is drawn from component k with probability
    ``weights[..., k]``, and log p(x) = logsumexp_k(log weights[k] + log p_k(x)).

    ``weights`` has the components along its last axis and the batch shape before it;
    every component is an elementwise distribution of the same support, broadcast to
    the mixture's batch shape. Drawing picks a component (a discrete choice), so
    there is no reparameterised sampler: a latent mixture site is scored, as guides
    and MCMC do, at values they propose.
    """

    arg_constraints = {"weights": constraints.simplex}
    has_rsample = False

    def __init__(self, weights, components, validate_args=None):
        self.components = list(components)
        if not self.components:
            raise ValueError("a Mixture needs at least one component")
        self.weights = weights
        shape = torch.broadcast_shapes(
            weights.shape[:-1], *(c.batch_shape for c in self.components)
        )
        if weights.shape[-1] != len(self.components):
            raise ValueError(f"{weights.shape[-1]} weights for {len(self.components)} components")
        super().__init__(shape, validate_args=False)

    @property
    def support(self):  # the components' common support
        return self.components[0].support

    def log_prob(self, value):
        parts = torch.stack([c.log_prob(value) for c in self.components], dim=-1)
        return torch.logsumexp(parts + self.weights.log(), dim=-1)

    def sample(self, sample_shape=_EMPTY):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            draws = torch.stack([c.sample(sample_shape).expand(shape) for c in self.components], -1)
            choice = D.Categorical(probs=self.weights.expand(*shape, len(self.components)))
            pick = choice.sample()
            return draws.gather(-1, pick.unsqueeze(-1)).squeeze(-1)

    @property
    def mean(self):
        means = torch.stack([c.mean.expand(self.batch_shape) for c in self.components], -1)
        return (means * self.weights).sum(-1)
