"""Stochastic variational inference: the optimisation driver.

``SVI(model, guide, optim, objective).step(x, observations)`` draws from the guide,
evaluates the objective (e.g. :class:`~quivers.inference.elbo.ELBO`), back-propagates
and takes one optimiser step (Hoffman, Blei, Wang & Paisley, 2013, "Stochastic
Variational Inference", JMLR 14).

**Lazy guide parameters.** Autoguides create their parameters on the first call with
data, so an optimiser built before the first step (``Adam(list(model.parameters()) +
list(guide.parameters()))``) does not know them. :meth:`SVI.step` therefore sets the
guide up first and adds every guide or model parameter missing from the optimiser
with ``optim.add_param_group`` (the group takes the optimiser's defaults, e.g. its
``lr``). ``optim`` may also be a factory ``params -> Optimizer``, called on the first
step with the model's and the guide's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.runtime.trace import Model

OptimFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


class SVI:
    """Minimise ``objective(model, guide, x, observations)`` with ``optim``."""

    def __init__(
        self,
        model: Model,
        guide: nn.Module,
        optim: torch.optim.Optimizer | OptimFactory,
        objective: Callable[..., torch.Tensor],
    ) -> None:
        self.model = model
        self.guide = guide
        self.objective = objective
        if isinstance(optim, torch.optim.Optimizer):
            self.optim: torch.optim.Optimizer | None = optim
            self._factory: OptimFactory | None = None
        elif callable(optim):
            self.optim = None
            self._factory = optim
        else:
            raise TypeError(f"optim must be a torch optimiser or a factory, got {optim!r}")

    def _all_params(self) -> list[nn.Parameter]:
        seen: set[int] = set()
        out = []
        for p in list(self.model.parameters()) + list(self.guide.parameters()):
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def _sync_optimizer(self) -> torch.optim.Optimizer:
        if self.optim is None:
            assert self._factory is not None
            self.optim = self._factory(self._all_params())
            return self.optim
        known = {id(p) for group in self.optim.param_groups for p in group["params"]}
        # Only the guide's parameters are added automatically: a model parameter the
        # user left out of the optimiser stays fixed on purpose.
        missing = [p for p in self.guide.parameters() if p.requires_grad and id(p) not in known]
        if missing:
            self.optim.add_param_group({"params": missing})
        return self.optim

    def _prepare(self, x: Any, observations: Mapping[str, Any] | None, run: dict[str, Any]) -> None:
        setup = getattr(self.guide, "setup", None)
        if setup is not None:
            setup(x, observations, **run)

    def step(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> float:
        """One gradient step; returns the objective's value (before the step)."""
        self._prepare(x, observations, run)
        optim = self._sync_optimizer()
        optim.zero_grad(set_to_none=True)
        loss = self.objective(self.model, self.guide, x, observations, **run)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the SVI objective is {float(loss)}; no step taken")
        torch.autograd.backward(loss)
        optim.step()
        return float(loss.detach())

    def evaluate_loss(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> float:
        """The objective's value without a step or gradients."""
        self._prepare(x, observations, run)
        with torch.no_grad():
            return float(self.objective(self.model, self.guide, x, observations, **run))

    def run(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_steps: int = 1000,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        **run: Any,
    ) -> list[float]:
        """``num_steps`` steps; returns the losses.

        ``progress`` gets a :class:`ProgressInfo` (phase ``"svi"``, stats ``loss``)
        after each step; when ``should_stop()`` returns True before a step, raises
        :class:`InferenceCancelled` with the losses so far as ``partial``.
        """
        losses: list[float] = []
        for i in range(num_steps):
            if should_stop is not None and should_stop():
                raise InferenceCancelled(f"SVI stopped after {i} of {num_steps} steps", losses)
            losses.append(self.step(x, observations, **run))
            if progress is not None:
                progress(ProgressInfo("svi", i + 1, num_steps, stats={"loss": losses[-1]}))
        return losses

    fit = run
