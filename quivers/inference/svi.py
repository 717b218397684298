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

**Data validated once.** The first step on a set of data validates them (the
runtime's checks: ids in range, each site's dtype and shape, a
:class:`~quivers.runtime.errors.QvrDataError` naming the site; and the argument
validation of ``torch.distributions`` as the user has it); later steps on the same
data skip both (:func:`~quivers.inference.validated.trusted_data`), as MCMC's
potential does. The driver keeps a :class:`~quivers.inference.validated.DataRecord`
of the data of the last validated step: data replaced or modified in place since,
and every new minibatch, are validated again. Only an objective that declares
``validates_once = True`` (:class:`~quivers.inference.elbo.ELBO` does) is trusted so:
it evaluates the model and the guide on the step's data alone, and the guide's
draws have the shapes and supports the first step validated. Any other objective
is validated on every step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.inference.validated import DataRecord, covers, trusted_data
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
        owner = getattr(objective, "__self__", objective)  # a bound method: its object's
        self._validates_once = bool(getattr(owner, "validates_once", False))
        self._validated: DataRecord | None = None  # the data of the last validated step

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

    def prepare(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> torch.optim.Optimizer:
        """Set the guide up on ``x`` and make sure the optimiser knows every parameter
        (before loading a saved optimiser state, or to count parameters)."""
        self._prepare(x, observations, run)
        return self._sync_optimizer()

    def parameters(self) -> list[nn.Parameter]:
        """The model's and the guide's trainable parameters, each once, in a fixed order."""
        return self._all_params()

    def step(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_rows: int | None = None,
        **run: Any,
    ) -> float:
        """One gradient step; returns the objective's value (before the step).

        With ``num_rows=N``, ``x`` and ``observations`` are a minibatch of a data set of
        N rows and the objective is its unbiased minibatch estimate (see
        :class:`~quivers.inference.elbo.ELBO`).
        """
        loss = self.loss_and_grads(x, observations, num_rows, **run)
        self.apply_grads()
        return loss

    def loss_and_grads(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_rows: int | None = None,
        **run: Any,
    ) -> float:
        """The first half of :meth:`step`: the objective and its gradients, no update.

        Data-parallel fitting reduces the gradients across workers between the halves.
        """
        loss, value = self._evaluate(x, observations, num_rows, run, zero_grad=True)
        if not math.isfinite(value):
            raise FloatingPointError(f"the SVI objective is {value}; no step taken")
        torch.autograd.backward(loss)
        return value

    def apply_grads(self) -> None:
        """The second half of :meth:`step`: one optimiser update."""
        assert self.optim is not None, "loss_and_grads comes first"
        self.optim.step()

    def _evaluate(
        self,
        x: Any,
        observations: Mapping[str, Any] | None,
        num_rows: int | None,
        run: dict[str, Any],
        zero_grad: bool = False,
    ) -> tuple[torch.Tensor, float]:
        """The objective on the step's data (the guide set up first) and its value.

        The data are validated unless they are those of the last validated step (see
        the module's docstring); ``zero_grad``: the optimiser, knowing every
        parameter, clears their gradients before the objective runs.
        """
        data = DataRecord(x, observations, run) if self._validates_once else None
        trusted = data is not None and covers(self._validated, data)
        with trusted_data() if trusted else contextlib.nullcontext():
            self._prepare(x, observations, run)
            if zero_grad:
                self._sync_optimizer().zero_grad(set_to_none=True)
            loss = self._objective(x, observations, num_rows, run)
            value = float(loss.detach())
        if not trusted:
            self._validated = data if math.isfinite(value) else None
        return loss, value

    def _objective(
        self,
        x: Any,
        observations: Mapping[str, Any] | None,
        num_rows: int | None,
        run: dict[str, Any],
    ) -> torch.Tensor:
        if num_rows is None:  # objectives that know nothing of minibatches still work
            return self.objective(self.model, self.guide, x, observations, **run)
        return self.objective(self.model, self.guide, x, observations, num_rows=num_rows, **run)

    def evaluate_loss(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_rows: int | None = None,
        **run: Any,
    ) -> float:
        """The objective's value without a step or gradients."""
        with torch.no_grad():
            return self._evaluate(x, observations, num_rows, run)[1]

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
