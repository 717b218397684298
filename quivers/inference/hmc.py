"""Hamiltonian Monte Carlo with a fixed trajectory length (Duane et al., 1987;
Neal, 2011, "MCMC using Hamiltonian dynamics").

A kernel is configuration only; the :class:`~quivers.inference.mcmc.MCMC` driver owns
the per-chain state and the warmup adaptation, and calls :meth:`transition`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from quivers.inference.integrator import (
    MAX_ENERGY_ERROR,
    PhasePoint,
    kinetic,
    leapfrog,
    sample_momentum,
)
from quivers.inference.potential import Potential


@dataclass
class TransitionInfo:
    """What one transition reports (used for adaptation and diagnostics)."""

    accept_stat: float  # mean Metropolis acceptance probability over the trajectory
    diverging: bool
    num_steps: int  # leapfrog steps taken
    tree_depth: int = 0
    energy: float = float("nan")  # Hamiltonian at the selected point


class MCMCKernel:
    """Shared configuration of the HMC-family kernels."""

    def __init__(
        self,
        step_size: float = 0.1,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        target_accept: float = 0.8,
        max_energy_error: float = MAX_ENERGY_ERROR,
    ) -> None:
        if step_size <= 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
        if not 0.0 < target_accept < 1.0:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
        self.step_size = float(step_size)
        self.adapt_step_size = adapt_step_size
        self.adapt_mass_matrix = adapt_mass_matrix
        self.target_accept = float(target_accept)
        self.max_energy_error = float(max_energy_error)

    def transition(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
    ) -> tuple[PhasePoint, TransitionInfo]:
        raise NotImplementedError


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
