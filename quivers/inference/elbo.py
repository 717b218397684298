"""The evidence lower bound as a differentiable loss.

ELBO(q) = E_q[log p(x, z) - log q(z)] (Jordan et al., 1999; with reparameterised
gradients as in Kingma & Welling, 2014, and ADVI, Kucukelbir et al., 2017). The
objective returns the **negative** ELBO, averaged over ``num_particles`` draws, so
that it can be minimised; its gradient reaches both the guide's and the model's
parameters (variational EM for the latter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.distributions import Distribution

from quivers.inference.guides import AutoGuide
from quivers.inference.layout import missing_observations
from quivers.runtime.trace import Model, TraceT


def _index(tree: TraceT, k: int) -> TraceT:
    if isinstance(tree, tuple | list):
        return tuple(_index(part, k) for part in tree)
    return tree[k]


class ELBO:
    """``ELBO(num_particles=K)(model, guide, x, observations)`` -> negative ELBO.

    With K > 1 the model's log density is evaluated for all particles at once with
    :func:`torch.func.vmap` when the model allows it (argument validation of
    ``torch.distributions`` is switched off inside the vectorised call, since it
    branches on data); if vectorisation fails once for a model, a Python loop over
    particles is used for it from then on. Set ``vectorize_particles=False`` to
    always loop.
    """

    def __init__(self, num_particles: int = 1, vectorize_particles: bool = True) -> None:
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        self.num_particles = int(num_particles)
        self.vectorize_particles = vectorize_particles
        self._vmap_ok: dict[int, bool] = {}

    def __call__(
        self,
        model: Model,
        guide: AutoGuide,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        **run: Any,
    ) -> torch.Tensor:
        obs = dict(observations or {})
        missing_observations(model.observed_names, obs)
        if self.num_particles == 1:
            draw = guide.sample(x, obs, **run)
            log_p = model.log_joint(x, {**obs, **draw.values}, **run)
            return -(log_p - draw.log_q)
        draw = guide.sample(x, obs, num_particles=self.num_particles, **run)
        log_p = self._log_joint_particles(model, x, obs, draw.values, run)
        return -(log_p - draw.log_q).mean()

    differentiable_loss = __call__

    def loss(
        self,
        model: Model,
        guide: AutoGuide,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        **run: Any,
    ) -> float:
        """The negative ELBO as a float, without gradients."""
        with torch.no_grad():
            return float(self(model, guide, x, observations, **run))

    def _log_joint_particles(
        self,
        model: Model,
        x: Any,
        obs: dict[str, Any],
        values: dict[str, TraceT],
        run: dict[str, Any],
    ) -> torch.Tensor:
        key = id(model)
        if self.vectorize_particles and self._vmap_ok.get(key, True):
            try:
                out = self._vmapped(model, x, obs, values, run)
                self._vmap_ok[key] = True
                return out
            except Exception:  # noqa: BLE001 - any failure means "not vectorisable"
                if self._vmap_ok.get(key):
                    raise  # it worked before: this is a real error
                self._vmap_ok[key] = False
        return torch.stack(
            [
                model.log_joint(x, {**obs, **{n: _index(v, k) for n, v in values.items()}}, **run)
                for k in range(self.num_particles)
            ]
        )

    @staticmethod
    def _vmapped(
        model: Model,
        x: Any,
        obs: dict[str, Any],
        values: dict[str, TraceT],
        run: dict[str, Any],
    ) -> torch.Tensor:
        def one(vals: dict[str, TraceT]) -> torch.Tensor:
            return model.log_joint(x, {**obs, **vals}, **run)

        previous = Distribution._validate_args
        Distribution.set_default_validate_args(False)
        try:
            return torch.func.vmap(one, randomness="error")(values)
        finally:
            Distribution.set_default_validate_args(previous)
