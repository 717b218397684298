"""The evidence lower bound as a differentiable loss.

ELBO(q) = E_q[log p(x, z) - log q(z)] (Jordan et al., 1999; with reparameterised
gradients as in Kingma & Welling, 2014, and ADVI, Kucukelbir et al., 2017). The
objective returns the **negative** ELBO, averaged over ``num_particles`` draws, so
that it can be minimised; its gradient reaches both the guide's and the model's
parameters (variational EM for the latter).

**Minibatches.** With ``num_rows=N`` the data passed is a minibatch of B of N rows
and the objective is the unbiased estimator of the full data set's negative ELBO
(Hoffman et al., 2013; Pyro's ``plate(subsample_size=...)``): every row's terms
(local and observed sites, per-row scores, the local part of ``log q``) are scaled
by N/B, the global sites' terms (drawn once for all rows) are counted once. It needs
the model's ``log_joint_rows`` and a guide that reports ``log_q_rows``
(:mod:`~quivers.inference.local_guides`), or a guide without local sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.distributions import Distribution

from quivers.inference.guides import AutoGuide
from quivers.inference.layout import missing_observations
from quivers.runtime.trace import Model, TraceT


@dataclass
class RowTerms:
    """log p - log q of one draw, per row (``rows``) and for the global sites (``glob``)."""

    rows: torch.Tensor
    glob: torch.Tensor


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

    It evaluates the model and the guide on the data it is given alone, so that
    :class:`~quivers.inference.svi.SVI` validates those data once
    (``validates_once``), not on every step.
    """

    validates_once: ClassVar[bool] = True

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
        num_rows: int | None = None,
        **run: Any,
    ) -> torch.Tensor:
        obs = dict(observations or {})
        missing_observations(model.observed_names, obs)
        if num_rows is not None:
            return self._minibatch(model, guide, x, obs, int(num_rows), run)
        if hasattr(guide, "row_terms"):  # a guide that scores its draw in one model run
            terms = self.row_terms(model, guide, x, obs, **run)
            return -(terms.rows.sum(-1) + terms.glob).mean()
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
        num_rows: int | None = None,
        **run: Any,
    ) -> float:
        """The negative ELBO as a float, without gradients."""
        with torch.no_grad():
            return float(self(model, guide, x, observations, num_rows, **run))

    def _minibatch(
        self,
        model: Any,
        guide: Any,
        x: Any,
        obs: dict[str, Any],
        num_rows: int,
        run: dict[str, Any],
    ) -> torch.Tensor:
        terms = self.row_terms(model, guide, x, obs, **run)
        batch = int(terms.rows.shape[-1])
        if num_rows < batch:
            raise ValueError(f"num_rows ({num_rows}) is smaller than the batch ({batch} rows)")
        scale = num_rows / batch
        return -(scale * terms.rows.sum(-1) + terms.glob).mean()

    def row_terms(
        self,
        model: Any,
        guide: Any,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        **run: Any,
    ) -> RowTerms:
        """The ELBO's integrand split into rows and globals, one value per particle.

        ``rows`` (K, batch): log p - log q of each row's local and observed sites;
        ``glob`` (K,): the global sites' log p - log q. Their sum over rows plus
        ``glob`` is the full-batch integrand; ``rows`` alone is what a held-out row
        costs given the global draw.
        """
        obs = dict(observations or {})
        log_joint_rows = getattr(model, "log_joint_rows", None)
        if log_joint_rows is None:
            raise TypeError(
                f"{type(model).__name__} has no log_joint_rows(x, values): a minibatch "
                "ELBO needs the per-row and global parts of the log density"
            )
        rows_lp: list[torch.Tensor] = []
        glob_lp: list[torch.Tensor] = []
        fused = getattr(guide, "row_terms", None)
        for _ in range(self.num_particles):  # particles one after another
            both = fused(x, obs, **run) if fused is not None else None
            if both is not None:
                rows_lp.append(both[0])
                glob_lp.append(both[1])
                continue
            draw = guide.sample(x, obs, **run)
            q_rows = draw.log_q_rows
            if q_rows is None:
                local = tuple(getattr(getattr(guide, "layout", None), "local_sites", ()))
                if local:
                    raise ValueError(
                        f"{type(guide).__name__} keeps one factor per row for the local "
                        f"site(s) {list(local)}; minibatches need a guide that computes "
                        "them (PriorGuide or AmortizedGuide)"
                    )
            p_rows, p_glob = log_joint_rows(x, {**obs, **draw.values}, **run)
            if q_rows is None:
                rows_lp.append(p_rows)
                glob_lp.append(p_glob - draw.log_q)
            else:
                rows_lp.append(p_rows - q_rows)
                glob_lp.append(p_glob - (draw.log_q - q_rows.sum()))
        return RowTerms(torch.stack(rows_lp), torch.stack(glob_lp))

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
