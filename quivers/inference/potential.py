"""The potential energy of a model's posterior in unconstrained space.

For latent traces z = T(u) (T the bijection onto each site's support),

    U(u) = -(log p(z, y | x) + log|det dT/du|),

the negative log density of the posterior pushed to R^D, which HMC and NUTS simulate
Hamiltonian dynamics on (Neal, 2011; Betancourt, 2017).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from quivers.inference.layout import LatentLayout, missing_observations
from quivers.runtime.trace import Model, Site, TraceT


class Potential:
    """U(u) and its gradient for ``model`` conditioned on ``observations``."""

    def __init__(
        self,
        model: Model,
        x: Any,
        observations: Mapping[str, Any] | None,
        trace: Mapping[str, Site],
        run: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.x = x
        self.observations = dict(observations or {})
        missing_observations(model.observed_names, self.observations)
        self.run = dict(run or {})
        self.layout = LatentLayout.from_trace(trace, set(self.observations))
        self.num_evals = 0
        self.last_error: str | None = None  # why the last infinite energy happened

    @property
    def dim(self) -> int:
        return self.layout.dim

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        values, ladj = self.layout.constrain(u)
        log_p = self.model.log_joint(self.x, {**self.observations, **values}, **self.run)
        return -(log_p + ladj)

    def value_and_grad(self, u: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(U(u), dU/du); a non-finite energy gives (inf, zeros)."""
        self.num_evals += 1
        with torch.enable_grad():
            u = u.detach().requires_grad_(True)
            try:
                energy = self(u)
            except ValueError as err:
                # out-of-support values after under/overflow of a transform
                self.last_error = f"{type(err).__name__}: {err}"
                return float("inf"), torch.zeros_like(u)
            value = float(energy.detach())
            if not math.isfinite(value):
                self.last_error = f"log density is {-value}"
                return float("inf"), torch.zeros_like(u)
            (grad,) = torch.autograd.grad(energy, u)
        if not bool(torch.isfinite(grad).all()):
            self.last_error = "non-finite gradient"
            return float("inf"), torch.zeros_like(grad)
        return value, grad

    def constrain(self, u: torch.Tensor) -> dict[str, TraceT]:
        with torch.no_grad():
            return self.layout.constrain(u, with_jacobian=False)[0]
