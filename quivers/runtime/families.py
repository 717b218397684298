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

from quivers.core.families import FAMILIES, Domain, Family
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.ir import FinSetT, ObjT, flat_dim

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _logit_normal(loc, scale, validate_args=False):
    return D.TransformedDistribution(
        D.Normal(loc, scale, validate_args=validate_args),
        [D.SigmoidTransform()],
        validate_args=validate_args,
    )


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
    "Poisson": D.Poisson,
    "Dirichlet": D.Dirichlet,
    "StudentT": D.StudentT,
}
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


def make_dist(family: str, params: dict[str, torch.Tensor | float]) -> D.Distribution:
    """A torch distribution (no argument validation: the runtime validates data)."""
    return _TORCH[family](**params, validate_args=False)


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
        self.event_sum = not self.finite_value and not vector
        self.free = [p for p in self.family.params if p.name not in self.fixed]
        self.width = width
        self.n_raw = width * len(self.free)
        self.squeeze = self.finite_value and not vector
        self._fast_normal = family == "Normal"

    # ------------------------------------------------------------ parameters
    def params(self, raw: torch.Tensor) -> dict[str, torch.Tensor | float]:
        """Constrained parameters from raw columns ``(..., n_raw)``."""
        out: dict[str, torch.Tensor | float] = dict(self.fixed)
        chunks = raw.split(self.width, dim=-1) if len(self.free) > 1 else (raw,)
        for p, r in zip(self.free, chunks, strict=True):
            if self.squeeze:
                r = r.squeeze(-1)
            if p.domain is Domain.SIMPLEX:
                out["logits"] = r  # torch normalises logits: softmax without the round trip
            elif p.domain is Domain.UNIT and self.name == "Bernoulli":
                out["logits"] = r
            else:
                out[p.name] = constrain(r, p.domain)
        return out

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
        return domain_constraint(self.family.support, self.n_values)
