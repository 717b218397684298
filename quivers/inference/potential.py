"""The potential energy of a model's posterior in unconstrained space.

For latent traces z = T(u) (T the bijection onto each site's support),

    U(u) = -(log p(z, y | x) + log|det dT/du|),

the negative log density of the posterior pushed to R^D, which HMC and NUTS simulate
Hamiltonian dynamics on (Neal, 2011; Betancourt, 2017).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.distributions import Distribution

from quivers.inference.compile import CompiledValueAndGrad
from quivers.inference.layout import LatentLayout, missing_observations
from quivers.runtime.trace import Model, Site, TraceT


@contextlib.contextmanager
def validation(on: bool) -> Iterator[None]:
    """Switch ``torch.distributions``' default argument validation for a block."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(on)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


class Potential:
    """U(u) and its gradient for ``model`` conditioned on ``observations``.

    The first evaluation that gives a finite energy runs with ``torch.distributions``'
    argument validation as the user has it (so observations outside a likelihood's
    support, or bad parameters, are reported at the starting point); every later one
    runs without it, since the data do not change and the latents are in their
    supports by construction: a leapfrog step does not re-validate. With
    ``compile=True`` the later evaluations go through :class:`CompiledValueAndGrad`
    (falling back to eager when compilation fails).
    """

    def __init__(
        self,
        model: Model,
        x: Any,
        observations: Mapping[str, Any] | None,
        trace: Mapping[str, Site],
        run: Mapping[str, Any] | None = None,
        compile: bool = False,
    ) -> None:
        self.model = model
        self.x = x
        self.observations = dict(observations or {})
        missing_observations(model.observed_names, self.observations)
        self.run = dict(run or {})
        self.layout = LatentLayout.from_trace(trace, set(self.observations))
        self.num_evals = 0
        self.last_error: str | None = None  # why the last infinite energy happened
        self.checked = False  # a finite energy was computed with validation on
        self.compiled = CompiledValueAndGrad(self, batched=False) if compile else None

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
        if not self.checked:
            out = self._eager(u)
            self.checked = math.isfinite(out[0])
            return out
        with validation(False):
            if self.compiled is not None:
                fast = self.compiled(u)
                if fast is not None:
                    energy, grad, ok = fast
                    value = float(energy)
                    if not (math.isfinite(value) and bool(ok)):
                        self.last_error = "non-finite log density or gradient"
                        return float("inf"), torch.zeros_like(grad)
                    return value, grad
            return self._eager(u)

    def _eager(self, u: torch.Tensor) -> tuple[float, torch.Tensor]:
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
