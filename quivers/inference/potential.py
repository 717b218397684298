"""The potential energy of a model's posterior in unconstrained space.

For latent traces z = T(u) (T the bijection onto each site's support),

    U(u) = -(log p(z, y | x) + log|det dT/du|),

the negative log density of the posterior pushed to R^D, which HMC and NUTS simulate
Hamiltonian dynamics on (Neal, 2011; Betancourt, 2017).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import torch

from quivers.inference.compile import CompiledValueAndGrad
from quivers.inference.layout import LatentLayout, missing_observations
from quivers.inference.validated import DataRecord, covers, trusted_data
from quivers.runtime.errors import QvrDataError
from quivers.runtime.trace import Model, Site, TraceT


def all_finite(t: torch.Tensor) -> bool:
    """Whether every entry of ``t`` is finite. A finite sum means finite entries (an
    inf or NaN entry makes the sum inf or NaN), and one sum is a single pass where
    ``isfinite(t).all()`` makes three and two bool copies (30x slower on the lifted
    RNN's 66,048-entry gradient); only a non-finite sum, which finite entries can
    give by overflowing, is looked at entry by entry."""
    return math.isfinite(float(t.sum())) or bool(torch.isfinite(t).all())


class Potential:
    """U(u) and its gradient for ``model`` conditioned on ``observations``.

    The data (``x``, ``observations``, ``run``) are validated by the first evaluation
    that gives a finite energy: the runtime's checks (ids in range, the sites' dtypes
    and shapes: a :class:`~quivers.runtime.errors.QvrDataError` naming the site) and
    ``torch.distributions``' argument validation as the user has it (observations
    outside a likelihood's support are reported at the starting point). Later
    evaluations on the same data skip both (:func:`~quivers.inference.validated.trusted_data`;
    the latents are in their supports by construction): a leapfrog step does not
    re-validate, and the model's log density has no host-side data branch, so that
    ``compile=True`` captures it in one graph (:class:`CompiledValueAndGrad`, eager
    when compilation fails). Data replaced or modified in place after that are
    validated again by the next evaluation (:class:`~quivers.inference.validated.DataRecord`).
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
        self._validated: DataRecord | None = None  # data of a finite validated evaluation
        self.compiled = CompiledValueAndGrad(self, batched=False) if compile else None

    @property
    def dim(self) -> int:
        return self.layout.dim

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        values, ladj = self.layout.constrain(u)
        log_p = self.model.log_joint(self.x, {**self.observations, **values}, **self.run)
        return -(log_p + ladj)

    def _data(self) -> DataRecord:
        return DataRecord(self.x, self.observations, self.run)

    @property
    def validated(self) -> DataRecord | None:
        """The record of the data the last validated evaluation saw; replaced by a new
        object whenever the data are validated again (a graph traced on the data,
        which holds them as constants, is stale once this changes)."""
        return self._validated

    @property
    def checked(self) -> bool:
        """Whether the current data were validated (by an evaluation of finite energy)."""
        return covers(self._validated, self._data())

    def trusted(self) -> contextlib.AbstractContextManager[None]:
        """Evaluations on validated data: no runtime data checks, no argument
        validation of ``torch.distributions`` (call only when :attr:`checked`)."""
        return trusted_data()

    def value_and_grad(self, u: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(U(u), dU/du); a non-finite energy gives (inf, zeros)."""
        self.num_evals += 1
        if not self.checked:
            data = self._data()
            out = self._eager(u)  # raises QvrDataError on bad data
            self._validated = data if math.isfinite(out[0]) else None
            return out
        with self.trusted():
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
            except QvrDataError:
                raise  # bad data, not a bad point: the site and shape, to the user
            except ValueError as err:
                # out-of-support values after under/overflow of a transform
                self.last_error = f"{type(err).__name__}: {err}"
                return float("inf"), torch.zeros_like(u)
            value = float(energy.detach())
            if not math.isfinite(value):
                self.last_error = f"log density is {-value}"
                return float("inf"), torch.zeros_like(u)
            (grad,) = torch.autograd.grad(energy, u)
        if not all_finite(grad):
            self.last_error = "non-finite gradient"
            return float("inf"), torch.zeros_like(grad)
        return value, grad

    def constrain(self, u: torch.Tensor) -> dict[str, TraceT]:
        with torch.no_grad():
            return self.layout.constrain(u, with_jacobian=False)[0]
