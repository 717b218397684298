"""Hamiltonian Monte Carlo with a fixed trajectory length (Duane et al., 1987;
Neal, 2011, "MCMC using Hamiltonian dynamics").

A kernel is configuration only (:mod:`quivers.inference.kernel`); the
:class:`~quivers.inference.mcmc.MCMC` driver owns the per-chain state and the warmup
adaptation.
"""

from __future__ import annotations

import math

import torch

from quivers.inference.batched import (
    BatchedPotential,
    BatchPoint,
    leapfrog_batch,
    pick,
    rowdot,
    sample_momentum_batch,
)
from quivers.inference.integrator import (
    MAX_ENERGY_ERROR,
    PhasePoint,
    kinetic,
    leapfrog,
    sample_momentum,
)
from quivers.inference.kernel import MCMCKernel, TransitionInfo
from quivers.inference.potential import Potential

__all__ = ["HMCKernel", "MCMCKernel", "TransitionInfo"]


class HMCKernel(MCMCKernel):
    """Static HMC: ``num_steps`` leapfrog steps (or ``trajectory_length / step_size``)
    then a Metropolis correction on the Hamiltonian."""

    def __init__(
        self,
        step_size: float = 0.1,
        num_steps: int = 10,
        trajectory_length: float | None = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        target_accept: float = 0.8,
        max_num_steps: int = 1024,
        max_energy_error: float = MAX_ENERGY_ERROR,
    ) -> None:
        super().__init__(
            step_size, adapt_step_size, adapt_mass_matrix, target_accept, max_energy_error
        )
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps = int(num_steps)
        self.trajectory_length = trajectory_length
        self.max_num_steps = int(max_num_steps)

    def _steps_for(self, step_size: float) -> int:
        if self.trajectory_length is None:
            return self.num_steps
        n = math.ceil(self.trajectory_length / step_size)
        return max(1, min(self.max_num_steps, n))

    def transition(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
    ) -> tuple[PhasePoint, TransitionInfo]:
        p = sample_momentum(inv_mass)
        h0 = point.potential + kinetic(p, inv_mass)
        current = point
        diverging = False
        n = self._steps_for(step_size)
        taken = 0
        for _ in range(n):
            current, p = leapfrog(potential, current, p, step_size, inv_mass)
            taken += 1
            if not math.isfinite(current.potential):
                diverging = True
                break
        h1 = current.potential + kinetic(p, inv_mass) if not diverging else float("inf")
        delta = h1 - h0
        if not math.isfinite(delta) or delta > self.max_energy_error:
            diverging = True
        accept = 0.0 if diverging else min(1.0, math.exp(-delta))
        if not diverging and torch.rand(()).item() < accept:
            return current, TransitionInfo(accept, False, taken, 0, h1)
        return point, TransitionInfo(accept, diverging, taken, 0, h0)

    def transition_batch(
        self,
        potential: BatchedPotential,
        state: BatchPoint,
        step_sizes: list[float],
        inv_mass: torch.Tensor,
    ) -> tuple[BatchPoint, list[TransitionInfo]]:
        chains = state.q.shape[0]
        p = sample_momentum_batch(inv_mass)
        h0 = [u + 0.5 * k for u, k in zip(state.potential, rowdot(p, inv_mass * p), strict=True)]
        lengths = [self._steps_for(s) for s in step_sizes]
        q, energy, grad = state.q, list(state.potential), state.grad
        running = [True] * chains
        taken = [0] * chains
        for i in range(max(lengths)):
            active = [r and i < n for r, n in zip(running, lengths, strict=True)]
            if not any(active):
                break
            q1, e1, g1, p1 = leapfrog_batch(potential, q, grad, p, step_sizes, inv_mass, active)
            q, grad, p = pick(active, q1, q), pick(active, g1, grad), pick(active, p1, p)
            for c, on in enumerate(active):
                if on:
                    energy[c] = e1[c]
                    taken[c] += 1
                    running[c] = math.isfinite(e1[c])
        kinetic = rowdot(p, inv_mass * p)
        h1 = [
            e + 0.5 * k if r else math.inf for e, k, r in zip(energy, kinetic, running, strict=True)
        ]
        diverging = [
            not (math.isfinite(d) and d <= self.max_energy_error)
            for d in (a - b for a, b in zip(h1, h0, strict=True))
        ]
        accept = [
            0.0 if dv else min(1.0, math.exp(h0[c] - h1[c])) for c, dv in enumerate(diverging)
        ]
        draws = torch.rand(chains).tolist() if not all(diverging) else [math.inf] * chains
        keep = [not dv and draws[c] < accept[c] for c, dv in enumerate(diverging)]
        infos = [
            TransitionInfo(accept[c], diverging[c], taken[c], 0, h1[c] if keep[c] else h0[c])
            for c in range(chains)
        ]
        out = BatchPoint(
            pick(keep, q, state.q),
            [e if k else u for e, k, u in zip(energy, keep, state.potential, strict=True)],
            pick(keep, grad, state.grad),
        )
        return out, infos
