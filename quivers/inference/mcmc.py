"""The MCMC driver: runs an HMC-family kernel on a model's posterior.

``MCMC(kernel, num_warmup, num_samples, num_chains, seed=...).run(model, x,
observations)`` builds the unconstrained potential
U(u) = -(log p(z, y | x) + log|det J|) (see :mod:`quivers.inference.potential`),
initialises each chain from a prior draw of the model (``model.trace``), from
Uniform(-2, 2) in unconstrained space (``init_strategy="uniform"``) or from
``init_params``, adapts during warmup (:mod:`quivers.inference.adaptation`) and
collects draws. Chains run as one batch (``chain_method="vectorized"``, the default
for several chains: :mod:`quivers.inference.batched`), one after another
(``"sequential"``), or in worker processes (``"parallel"``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from quivers.inference import diagnostics
from quivers.inference.adaptation import WarmupAdapter
from quivers.inference.batched import BatchedPotential, BatchPoint
from quivers.inference.integrator import PhasePoint, find_reasonable_step_size
from quivers.inference.kernel import MCMCKernel, TransitionInfo
from quivers.inference.potential import Potential
from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.runtime.trace import Model, TraceT, leaves, unflatten


def _map_leaves(tree: TraceT, fn: Any) -> TraceT:
    return unflatten(tree, [fn(leaf) for leaf in leaves(tree)])


@dataclass
class MCMCResult:
    """Draws and statistics of an MCMC run.

    ``samples[site]`` has shape ``(chains, draws, *site_shape)`` (a tuple of such
    tensors for a composite trace); ``acceptance_rates`` and ``divergence_counts``
    are per chain (sampling phase); ``r_hat`` and ``ess`` map each site to one value
    per coordinate (rank-normalised split R-hat and bulk ESS, Vehtari et al. 2021).
    ``energy`` is the Hamiltonian at every draw (for ArviZ's energy plot).
    ``complete`` is False for the partial result of a stopped run (fewer draws than
    asked for: see :class:`~quivers.inference.progress.InferenceCancelled`).
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
    energy: torch.Tensor  # (chains, draws) float64
    num_warmup: int = 0
    complete: bool = True
    observations: dict[str, Any] = field(default_factory=dict)  # what the run conditioned on

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

    def to_arviz(self, observed_data: Mapping[str, Any] | None = None) -> Any:
        """An ``arviz.InferenceData`` of this run (needs the ``arviz`` extra; see
        :mod:`quivers.inference.interop`)."""
        from quivers.inference.interop import to_arviz

        return to_arviz(self, observed_data)

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
            f"warmup_divergences={self.warmup_divergence_counts.tolist()} "
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


CHAIN_METHODS = ("vectorized", "sequential", "parallel")


@dataclass(frozen=True)
class ChainRecord:
    """What one chain produced: its kept draws and per-draw statistics, and its
    adapted step size and inverse metric."""

    draws: torch.Tensor  # (draws, D)
    accept: torch.Tensor  # (draws,) float64
    steps: torch.Tensor  # (draws,) int64
    depths: torch.Tensor  # (draws,) int64
    diverging: torch.Tensor  # (draws,) bool
    energy: torch.Tensor  # (draws,) float64
    step_size: float
    inv_mass: torch.Tensor  # (D,)
    warmup_divergences: int

    def truncated(self, n: int) -> ChainRecord:
        return ChainRecord(
            self.draws[:n],
            self.accept[:n],
            self.steps[:n],
            self.depths[:n],
            self.diverging[:n],
            self.energy[:n],
            self.step_size,
            self.inv_mass,
            self.warmup_divergences,
        )


class _Buffers:
    """Preallocated per-draw storage for C chains."""

    def __init__(self, chains: int, num: int, dim: int, like: torch.Tensor) -> None:
        dev = like.device
        self.draws = torch.empty(chains, num, dim, dtype=like.dtype, device=dev)
        self.accept = torch.empty(chains, num, dtype=torch.float64)
        self.steps = torch.empty(chains, num, dtype=torch.int64)
        self.depths = torch.empty(chains, num, dtype=torch.int64)
        self.diverging = torch.zeros(chains, num, dtype=torch.bool)
        self.energy = torch.empty(chains, num, dtype=torch.float64)

    def put(self, chain: int, i: int, info: TransitionInfo) -> None:
        self.accept[chain, i] = info.accept_stat
        self.steps[chain, i] = info.num_steps
        self.depths[chain, i] = info.tree_depth
        self.diverging[chain, i] = info.diverging
        self.energy[chain, i] = info.energy

    def record(
        self, chain: int, n: int, step_size: float, inv_mass: torch.Tensor, warm_div: int
    ) -> ChainRecord:
        return ChainRecord(
            self.draws[chain, :n],
            self.accept[chain, :n],
            self.steps[chain, :n],
            self.depths[chain, :n],
            self.diverging[chain, :n],
            self.energy[chain, :n],
            step_size,
            inv_mass,
            warm_div,
        )


class _Stopped(Exception):
    """Internal: the stop callback fired; carries what the chains produced so far."""

    def __init__(self, message: str, records: list[ChainRecord]) -> None:
        super().__init__(message)
        self.records = records


class MCMC:
    """Runs ``num_chains`` chains of ``kernel`` (an :class:`HMCKernel` or
    :class:`NUTSKernel`), each with ``num_warmup`` adaptation iterations (discarded)
    and ``num_samples`` kept draws.

    ``chain_method`` is ``"vectorized"`` (the default for several chains: every chain
    advances in one batch, one potential-and-gradient call per leapfrog step for all
    of them, each with its own step size, metric and trajectory), ``"sequential"``
    (one chain after another, the default for one chain) or ``"parallel"`` (one worker
    process per chain, through ``torch.multiprocessing``, for models that do not
    batch; the model must be picklable, and chain ``c`` is seeded ``seed + c``).
    ``seed`` makes a run reproducible without touching the global RNG state.
    ``init_strategy`` is ``"prior"`` (a draw of the model, the default: a network's
    weights start at the scale its prior gives them) or ``"uniform"`` (Stan's
    Uniform(-2, 2) in unconstrained space: better for a heavy-tailed prior such as a
    HalfCauchy scale, whose draws can start a chain further out than a short warmup
    brings it back from); up to
    ``max_init_attempts`` starts are tried until the log density and its gradient are
    finite. ``compile=True`` runs the potential and its gradient through
    ``torch.compile`` (see :mod:`quivers.inference.compile`; a transition of NUTS's
    iterative tree is one compiled graph, :mod:`quivers.inference.nuts_graph`): the
    first calls compile (tens of seconds for the transition's graph the first time,
    then TorchInductor's disk cache), and a model that cannot be compiled runs eagerly
    after a :class:`CompileFallbackWarning`.
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
        chain_method: str | None = None,
        compile: bool = False,
    ) -> None:
        if num_warmup < 0 or num_samples < 1 or num_chains < 1:
            raise ValueError("need num_warmup >= 0, num_samples >= 1 and num_chains >= 1")
        if init_strategy not in ("prior", "uniform"):
            raise ValueError(f"init_strategy must be 'prior' or 'uniform', got {init_strategy!r}")
        if chain_method is None:
            chain_method = "vectorized" if num_chains > 1 else "sequential"
        if chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")
        self.kernel = kernel
        self.num_warmup = int(num_warmup)
        self.num_samples = int(num_samples)
        self.num_chains = int(num_chains)
        self.seed = seed
        self.init_strategy = init_strategy
        self.max_init_attempts = int(max_init_attempts)
        self.chain_method = chain_method
        self.compile = bool(compile)

    def run(
        self,
        model: Model,
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
        with phase ``"warmup"`` or ``"sampling"`` (for vectorised chains once per
        iteration for all chains, with ``chain`` -1). When ``should_stop()`` returns
        True the run raises :class:`InferenceCancelled` whose ``partial`` holds the
        draws made so far (``complete=False``; None when no draw was kept yet):
        every chain's draws for vectorised chains; for sequential chains the finished
        chains, or the current chain's draws when none has finished.
        """
        if self.chain_method == "parallel":
            from quivers.inference.parallel import run_parallel

            return run_parallel(
                self, model, x, observations, init_params, progress, should_stop, run_kwargs
            )
        obs = dict(observations or {})
        run = dict(run_kwargs or {})
        with _seeded(self.seed):
            with torch.no_grad():
                first_trace = model.trace(x, obs, **run)
            potential = Potential(model, x, obs, first_trace, run, compile=self.compile)
            if potential.dim == 0:
                raise ValueError(
                    "the model has no latent sites to sample (every site is observed "
                    f"or given: {sorted(first_trace)})"
                )
            try:
                if self.chain_method == "vectorized":
                    records = self._run_vectorized(
                        potential, first_trace, init_params, progress, should_stop
                    )
                else:
                    records = self._run_sequential(
                        potential, first_trace, init_params, progress, should_stop
                    )
            except _Stopped as stop:
                partial = (
                    self._collect(potential, stop.records, complete=False) if stop.records else None
                )
                raise InferenceCancelled(str(stop), partial) from None
        return self._collect(potential, records)

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
                q = torch.rand(layout.dim, dtype=layout.dtype, device=layout.device) * 4.0 - 2.0
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
            if init_params and len(init_params) == len(layout.site_names):
                break  # every site is given: another attempt would start at the same point
        raise RuntimeError(
            f"could not find a starting point with finite log density after "
            f"{self.max_init_attempts} attempts (last potential {last}: "
            f"{potential.last_error}); pass init_params"
        )

    def _adapter(self, potential: Potential, point: PhasePoint) -> WarmupAdapter:
        kernel = self.kernel
        adapter = WarmupAdapter(
            self.num_warmup,
            potential.dim,
            kernel.step_size,
            kernel.target_accept,
            adapt_step_size=kernel.adapt_step_size and self.num_warmup > 0,
            adapt_mass_matrix=kernel.adapt_mass_matrix,
            like=point.q,
        )
        if adapter.adapt_step_size:
            adapter.restart_step_size(
                find_reasonable_step_size(potential, point, adapter.inv_mass, adapter.step_size)
            )
        return adapter

    def _run_sequential(
        self,
        potential: Potential,
        first_trace: Mapping[str, Any],
        init_params: Mapping[str, TraceT] | None,
        progress: ProgressFn | None,
        should_stop: StopFn | None,
    ) -> list[ChainRecord]:
        records: list[ChainRecord] = []
        for c in range(self.num_chains):
            try:
                records.append(
                    self._run_chain(
                        c,
                        potential,
                        first_trace if c == 0 else None,
                        init_params,
                        progress,
                        should_stop,
                    )
                )
            except _Stopped as stop:
                raise _Stopped(str(stop), records or stop.records) from None
        return records

    def _run_chain(
        self,
        chain: int,
        potential: Potential,
        trace: Mapping[str, Any] | None,
        init_params: Mapping[str, TraceT] | None,
        progress: ProgressFn | None,
        should_stop: StopFn | None,
    ) -> ChainRecord:
        kernel = self.kernel
        point = self._initial_point(potential, trace, init_params)
        adapter = self._adapter(potential, point)
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
                progress(self._info("warmup", i, self.num_warmup, chain, [info], [used]))
        step_size = adapter.finish()
        inv_mass = adapter.inv_mass
        out = _Buffers(1, self.num_samples, potential.dim, point.q)

        def kept(n: int) -> list[ChainRecord]:
            return [out.record(0, n, step_size, inv_mass, warm_div)]

        for i in range(self.num_samples):
            self._check_stop(should_stop, "sampling", i, chain, kept)
            point, info = kernel.transition(potential, point, step_size, inv_mass)
            out.draws[0, i] = point.q
            out.put(0, i, info)
            if progress is not None:
                progress(self._info("sampling", i, self.num_samples, chain, [info], [step_size]))
        return out.record(0, self.num_samples, step_size, inv_mass, warm_div)

    def _run_vectorized(
        self,
        potential: Potential,
        first_trace: Mapping[str, Any],
        init_params: Mapping[str, TraceT] | None,
        progress: ProgressFn | None,
        should_stop: StopFn | None,
    ) -> list[ChainRecord]:
        """All chains in lock step (same RNG order as sequential for one chain)."""
        kernel = self.kernel
        chains = self.num_chains
        adapters: list[WarmupAdapter] = []
        points: list[PhasePoint] = []
        for c in range(chains):
            point = self._initial_point(potential, first_trace if c == 0 else None, init_params)
            points.append(point)
            adapters.append(self._adapter(potential, point))
        batched = BatchedPotential(potential)
        state = BatchPoint.stack(points)
        inv_mass = torch.stack([a.inv_mass for a in adapters])
        warm_div = [0] * chains
        for i in range(self.num_warmup):
            self._check_stop(should_stop, "warmup", i, -1)
            used = [a.step_size for a in adapters]
            state, infos = kernel.transition_batch(batched, state, used, inv_mass)
            changed = False
            for c, adapter in enumerate(adapters):
                warm_div[c] += int(infos[c].diverging)
                if adapter.update(i, state.q[c], infos[c].accept_stat):
                    changed = True
                    if adapter.adapt_step_size:
                        adapter.restart_step_size(
                            find_reasonable_step_size(
                                potential, state.point(c), adapter.inv_mass, adapter.step_size
                            )
                        )
            if changed:
                inv_mass = torch.stack([a.inv_mass for a in adapters])
            if progress is not None:
                progress(self._info("warmup", i, self.num_warmup, -1, infos, used))
        steps = [a.finish() for a in adapters]
        out = _Buffers(chains, self.num_samples, potential.dim, state.q)

        def records(n: int) -> list[ChainRecord]:
            return [out.record(c, n, steps[c], inv_mass[c], warm_div[c]) for c in range(chains)]

        for i in range(self.num_samples):
            self._check_stop(should_stop, "sampling", i, -1, records)
            state, infos = kernel.transition_batch(batched, state, steps, inv_mass)
            out.draws[:, i] = state.q
            for c in range(chains):
                out.put(c, i, infos[c])
            if progress is not None:
                progress(self._info("sampling", i, self.num_samples, -1, infos, steps))
        return records(self.num_samples)

    def _check_stop(
        self,
        should_stop: StopFn | None,
        phase: str,
        i: int,
        chain: int,
        kept: Callable[[int], list[ChainRecord]] | None = None,
    ) -> None:
        if should_stop is not None and should_stop():
            where = (
                f"of chain {chain} ({self.num_chains} chains)"
                if chain >= 0
                else f"({self.num_chains} vectorised chains)"
            )
            raise _Stopped(
                f"MCMC stopped in {phase} iteration {i} {where}", kept(i) if kept and i else []
            )

    def _info(
        self,
        phase: str,
        i: int,
        total: int,
        chain: int,
        infos: list[TransitionInfo],
        step_sizes: list[float],
    ) -> ProgressInfo:
        """One report; for vectorised chains (``chain`` -1) the statistics are means
        over the chains (``diverging``: how many diverged)."""
        n = len(infos)
        return ProgressInfo(
            phase,
            i + 1,
            total,
            chain,
            self.num_chains,
            {
                "accept_prob": sum(t.accept_stat for t in infos) / n,
                "diverging": float(sum(t.diverging for t in infos)),
                "step_size": sum(step_sizes) / n,
                "num_steps": sum(t.num_steps for t in infos) / n,
                "tree_depth": sum(t.tree_depth for t in infos) / n,
            },
        )

    def _collect(
        self, potential: Potential, chains: list[ChainRecord], complete: bool = True
    ) -> MCMCResult:
        draws = torch.stack([c.draws for c in chains])  # (C, N, D)
        samples = potential.constrain(draws)
        diverging = torch.stack([c.diverging for c in chains])
        accept = torch.stack([c.accept for c in chains])
        return MCMCResult(
            samples=samples,
            unconstrained=draws,
            acceptance_rates=accept.mean(dim=1),
            divergence_counts=diverging.sum(dim=1),
            warmup_divergence_counts=torch.tensor(
                [c.warmup_divergences for c in chains], dtype=torch.int64
            ),
            step_sizes=torch.tensor([c.step_size for c in chains], dtype=torch.float64),
            inverse_mass=torch.stack([c.inv_mass for c in chains]),
            accept_stats=accept,
            num_steps=torch.stack([c.steps for c in chains]),
            tree_depths=torch.stack([c.depths for c in chains]),
            diverging=diverging,
            energy=torch.stack([c.energy for c in chains]),
            num_warmup=self.num_warmup,
            complete=complete,
            observations=dict(potential.observations),
        )
