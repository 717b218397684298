"""The MCMC driver: runs an HMC-family kernel on a model's posterior.

``MCMC(kernel, num_warmup, num_samples, num_chains, seed=...).run(model, x,
observations)`` builds the unconstrained potential
U(u) = -(log p(z, y | x) + log|det J|) (see :mod:`quivers.inference.potential`),
initialises each chain from a prior draw of the model (``model.trace``) or from
``init_params``, adapts during warmup (:mod:`quivers.inference.adaptation`) and
collects draws. Chains run one after another in this process.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from quivers.inference import diagnostics
from quivers.inference.adaptation import WarmupAdapter
from quivers.inference.hmc import MCMCKernel
from quivers.inference.integrator import PhasePoint, find_reasonable_step_size
from quivers.inference.potential import Potential
from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.runtime.trace import TraceT, leaves, unflatten


def _map_leaves(tree: TraceT, fn: Any) -> TraceT:
    return unflatten(tree, [fn(leaf) for leaf in leaves(tree)])


@dataclass
class MCMCResult:
    """Draws and statistics of an MCMC run.

    ``samples[site]`` has shape ``(chains, draws, *site_shape)`` (a tuple of such
    tensors for a composite trace); ``acceptance_rates`` and ``divergence_counts``
    are per chain (sampling phase); ``r_hat`` and ``ess`` map each site to one value
    per coordinate (rank-normalised split R-hat and bulk ESS, Vehtari et al. 2021).
    """

    samples: dict[str, TraceT]
    unconstrained: torch.Tensor  # (chains, draws, D)
    acceptance_rates: torch.Tensor  # (chains,)
    divergence_counts: torch.Tensor  # (chains,) int64
    warmup_divergence_counts: torch.Tensor  # (chains,) int64
    step_sizes: torch.Tensor  # (chains,)
    inverse_mass: torch.Tensor  # (chains, D)
    accept_stats: torch.Tensor  # (chains, draws)
    num_steps: torch.Tensor  # (chains, draws) leapfrog steps per draw
    tree_depths: torch.Tensor  # (chains, draws)
    diverging: torch.Tensor  # (chains, draws) bool
    num_warmup: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_chains(self) -> int:
        return int(self.unconstrained.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.unconstrained.shape[1])

    @cached_property
    def r_hat(self) -> dict[str, TraceT]:
        return {k: _map_leaves(v, diagnostics.r_hat) for k, v in self.samples.items()}

    @cached_property
    def ess(self) -> dict[str, TraceT]:
        return {k: _map_leaves(v, diagnostics.ess) for k, v in self.samples.items()}

    def flat_samples(self) -> dict[str, TraceT]:
        """Samples with chains and draws merged: ``(chains * draws, *site_shape)``."""
        return {
            k: _map_leaves(v, lambda t: t.reshape((-1,) + tuple(t.shape[2:])))
            for k, v in self.samples.items()
        }

    def summary(self, max_coords: int = 8) -> str:
        """A table of mean, sd, r_hat and bulk ESS per site.

        A site with at most ``max_coords`` coordinates gets one row per coordinate;
        a larger site gets one row for the whole block: the average mean and sd of
        its coordinates, its worst (largest) R-hat and its smallest ESS.
        """
        rows: list[tuple[str, float, float, float, float]] = []
        for name, value in self.samples.items():
            parts = leaves(value)
            rh, es = leaves(self.r_hat[name]), leaves(self.ess[name])
            for i, (draws, r, e) in enumerate(zip(parts, rh, es, strict=True)):
                label = name if len(parts) == 1 else f"{name}.{i}"
                d = draws.reshape(draws.shape[0] * draws.shape[1], -1).to(torch.float64)
                mean, sd = d.mean(0), d.std(0) if d.shape[0] > 1 else torch.zeros(d.shape[1])
                r, e = r.reshape(-1), e.reshape(-1)
                event = tuple(draws.shape[2:])
                if d.shape[1] <= max_coords:
                    for j in range(d.shape[1]):
                        idx = (
                            "" if not event else "[" + ",".join(map(str, _unravel(j, event))) + "]"
                        )
                        rows.append(
                            (label + idx, float(mean[j]), float(sd[j]), float(r[j]), float(e[j]))
                        )
                else:
                    rows.append(
                        (
                            f"{label}[{'x'.join(map(str, event))}]",
                            float(mean.mean()),
                            float(sd.mean()),
                            float(torch.nan_to_num(r, nan=math.inf).max()),
                            float(torch.nan_to_num(e, nan=0.0).min()),
                        )
                    )
        width = max([len(r[0]) for r in rows] + [4])
        head = f"{'site':<{width}}  {'mean':>10}  {'sd':>10}  {'r_hat':>7}  {'ess':>9}"
        lines = [head, "-" * len(head)]
        for label, mean_v, sd_v, r_v, e_v in rows:
            lines.append(
                f"{label:<{width}}  {mean_v:>10.4g}  {sd_v:>10.4g}  {r_v:>7.3f}  {e_v:>9.1f}"
            )
        lines.append(
            f"chains={self.num_chains} draws={self.num_samples} "
            f"divergences={self.divergence_counts.tolist()} "
            f"acceptance={[round(a, 3) for a in self.acceptance_rates.tolist()]}"
        )
        return "\n".join(lines)


def _unravel(i: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for size in reversed(shape):
        out.append(i % size)
        i //= size
    return out[::-1]


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class MCMC:
    """Runs ``num_chains`` chains of ``kernel`` (an :class:`HMCKernel` or
    :class:`NUTSKernel`), each with ``num_warmup`` adaptation iterations (discarded)
    and ``num_samples`` kept draws.

    ``seed`` makes a run reproducible without touching the global RNG state.
    ``init_strategy`` is ``"prior"`` (a draw of the model, the default) or
    ``"uniform"`` (Stan's Uniform(-2, 2) in unconstrained space); up to
    ``max_init_attempts`` starts are tried until the log density and its gradient are
    finite.
    """

    def __init__(
        self,
        kernel: MCMCKernel,
        num_warmup: int = 500,
        num_samples: int = 500,
        num_chains: int = 1,
        seed: int | None = None,
        init_strategy: str = "prior",
        max_init_attempts: int = 100,
    ) -> None:
        if num_warmup < 0 or num_samples < 1 or num_chains < 1:
            raise ValueError("need num_warmup >= 0, num_samples >= 1 and num_chains >= 1")
        if init_strategy not in ("prior", "uniform"):
            raise ValueError(f"init_strategy must be 'prior' or 'uniform', got {init_strategy!r}")
        self.kernel = kernel
        self.num_warmup = int(num_warmup)
        self.num_samples = int(num_samples)
        self.num_chains = int(num_chains)
        self.seed = seed
        self.init_strategy = init_strategy
        self.max_init_attempts = int(max_init_attempts)

    def run(
        self,
        model: Any,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        init_params: Mapping[str, TraceT] | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        run_kwargs: Mapping[str, Any] | None = None,
    ) -> MCMCResult:
        """Sample the posterior of ``model``'s latent sites given ``observations``.

        ``init_params`` gives constrained starting values for some or all latent
        sites (shared by every chain). ``progress`` is called after every iteration
        with phase ``"warmup"`` or ``"sampling"``; when ``should_stop()`` returns True
        the run raises :class:`InferenceCancelled` whose ``partial`` is the result of
        the chains already finished (or None).
        """
        obs = dict(observations or {})
        run = dict(run_kwargs or {})
        with _seeded(self.seed):
            with torch.no_grad():
                first_trace = model.trace(x, obs, **run)
            potential = Potential(model, x, obs, first_trace, run)
            if potential.dim == 0:
                raise ValueError(
                    "the model has no latent sites to sample (every site is observed "
                    f"or given: {sorted(first_trace)})"
                )
            chains: list[dict[str, Any]] = []
            for c in range(self.num_chains):
                trace = first_trace if c == 0 else None
                try:
                    chains.append(
                        self._run_chain(c, potential, trace, init_params, progress, should_stop)
                    )
                except InferenceCancelled as stop:
                    partial = self._collect(potential, chains) if chains else None
                    raise InferenceCancelled(str(stop), partial) from None
        return self._collect(potential, chains)

    # ------------------------------------------------------------------ chains

    def _initial_point(
        self,
        potential: Potential,
        trace: Mapping[str, Any] | None,
        init_params: Mapping[str, TraceT] | None,
    ) -> PhasePoint:
        layout = potential.layout
        for name in init_params or {}:
            if name not in layout.site_names:
                raise KeyError(f"init_params names '{name}', which is not a latent site")
        last = math.nan
        for attempt in range(self.max_init_attempts):
            if self.init_strategy == "uniform":
                q = torch.rand(layout.dim) * 4.0 - 2.0
                if init_params:
                    values, _ = layout.constrain(q, with_jacobian=False)
                    values.update(init_params)
                    q = layout.unconstrain(values)
            else:
                if trace is None or attempt > 0:
                    with torch.no_grad():
                        trace = potential.model.trace(
                            potential.x, potential.observations, **potential.run
                        )
                values = {name: trace[name].trace for name in layout.site_names}
                values.update(init_params or {})
                q = layout.unconstrain(values)
            energy, grad = potential.value_and_grad(q.detach())
            if math.isfinite(energy):
                return PhasePoint(q.detach(), energy, grad)
            last = energy
            if (
                init_params
                and self.init_strategy == "prior"
                and len(init_params) == len(layout.site_names)
            ):
                break
        raise RuntimeError(
            f"could not find a starting point with finite log density after "
            f"{self.max_init_attempts} attempts (last potential {last}: "
            f"{potential.last_error}); pass init_params"
        )

    def _run_chain(
        self,
        chain: int,
        potential: Potential,
        trace: Mapping[str, Any] | None,
        init_params: Mapping[str, TraceT] | None,
        progress: ProgressFn | None,
        should_stop: StopFn | None,
    ) -> dict[str, Any]:
        kernel = self.kernel
        point = self._initial_point(potential, trace, init_params)
        dim = potential.dim
        adapter = WarmupAdapter(
            self.num_warmup,
            dim,
            kernel.step_size,
            kernel.target_accept,
            adapt_step_size=kernel.adapt_step_size and self.num_warmup > 0,
            adapt_mass_matrix=kernel.adapt_mass_matrix,
        )
        adapter.inv_mass = adapter.inv_mass.to(point.q.dtype)
        if adapter.adapt_step_size:
            adapter.restart_step_size(
                find_reasonable_step_size(potential, point, adapter.inv_mass, adapter.step_size)
            )
        warm_div = 0
        for i in range(self.num_warmup):
            self._check_stop(should_stop, "warmup", i, chain)
            point, info = kernel.transition(potential, point, adapter.step_size, adapter.inv_mass)
            warm_div += int(info.diverging)
            used = adapter.step_size
            if adapter.update(i, point.q, info.accept_stat) and adapter.adapt_step_size:
                adapter.restart_step_size(
                    find_reasonable_step_size(potential, point, adapter.inv_mass, adapter.step_size)
                )
            if progress is not None:
                progress(self._info("warmup", i, self.num_warmup, chain, info, used))
        step_size = adapter.finish()
        inv_mass = adapter.inv_mass
        draws = torch.empty(self.num_samples, dim, dtype=point.q.dtype)
        accept = torch.empty(self.num_samples, dtype=torch.float64)
        steps = torch.empty(self.num_samples, dtype=torch.int64)
        depths = torch.empty(self.num_samples, dtype=torch.int64)
        diverging = torch.zeros(self.num_samples, dtype=torch.bool)
        for i in range(self.num_samples):
            self._check_stop(should_stop, "sampling", i, chain)
            point, info = kernel.transition(potential, point, step_size, inv_mass)
            draws[i] = point.q
            accept[i] = info.accept_stat
            steps[i] = info.num_steps
            depths[i] = info.tree_depth
            diverging[i] = info.diverging
            if progress is not None:
                progress(self._info("sampling", i, self.num_samples, chain, info, step_size))
        return {
            "draws": draws,
            "accept": accept,
            "steps": steps,
            "depths": depths,
            "diverging": diverging,
            "step_size": step_size,
            "inv_mass": inv_mass,
            "warmup_divergences": warm_div,
        }

    def _check_stop(self, should_stop: StopFn | None, phase: str, i: int, chain: int) -> None:
        if should_stop is not None and should_stop():
            raise InferenceCancelled(
                f"MCMC stopped in {phase} iteration {i} of chain {chain} ({self.num_chains} chains)"
            )

    def _info(
        self, phase: str, i: int, total: int, chain: int, info: Any, step_size: float
    ) -> ProgressInfo:
        return ProgressInfo(
            phase,
            i + 1,
            total,
            chain,
            self.num_chains,
            {
                "accept_prob": info.accept_stat,
                "diverging": float(info.diverging),
                "step_size": step_size,
                "num_steps": float(info.num_steps),
                "tree_depth": float(info.tree_depth),
            },
        )

    def _collect(self, potential: Potential, chains: list[dict[str, Any]]) -> MCMCResult:
        draws = torch.stack([c["draws"] for c in chains])  # (C, N, D)
        samples = potential.constrain(draws)
        diverging = torch.stack([c["diverging"] for c in chains])
        accept = torch.stack([c["accept"] for c in chains])
        return MCMCResult(
            samples=samples,
            unconstrained=draws,
            acceptance_rates=accept.mean(dim=1),
            divergence_counts=diverging.sum(dim=1),
            warmup_divergence_counts=torch.tensor(
                [c["warmup_divergences"] for c in chains], dtype=torch.int64
            ),
            step_sizes=torch.tensor([c["step_size"] for c in chains], dtype=torch.float64),
            inverse_mass=torch.stack([c["inv_mass"] for c in chains]),
            accept_stats=accept,
            num_steps=torch.stack([c["steps"] for c in chains]),
            tree_depths=torch.stack([c["depths"] for c in chains]),
            diverging=diverging,
            num_warmup=self.num_warmup,
        )
