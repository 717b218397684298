"""The interface every MCMC transition kernel implements, and what one transition reports.

A kernel is configuration only (Pyro/NumPyro's split of kernel and driver): the
:class:`~quivers.inference.mcmc.MCMC` driver owns the chains' state and the warmup
adaptation, and calls :meth:`MCMCKernel.transition` for one chain or
:meth:`MCMCKernel.transition_batch` for all chains at once (vectorised chains).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from quivers.inference.integrator import MAX_ENERGY_ERROR, PhasePoint
from quivers.inference.potential import Potential

if TYPE_CHECKING:
    from quivers.inference.batched import BatchedPotential, BatchPoint


@dataclass(frozen=True)
class TransitionInfo:
    """What one transition of one chain reports (for adaptation and diagnostics)."""

    accept_stat: float  # mean Metropolis acceptance probability over the trajectory
    diverging: bool
    num_steps: int  # leapfrog steps taken
    tree_depth: int
    energy: float  # the Hamiltonian at the selected point (ArviZ's and Stan's "energy")


class MCMCKernel(ABC):
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

    @abstractmethod
    def transition(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
    ) -> tuple[PhasePoint, TransitionInfo]:
        """One transition of one chain from ``point`` with a diagonal inverse metric."""

    @abstractmethod
    def transition_batch(
        self,
        potential: BatchedPotential,
        state: BatchPoint,
        step_sizes: list[float],
        inv_mass: torch.Tensor,
    ) -> tuple[BatchPoint, list[TransitionInfo]]:
        """One transition of every chain at once: ``state`` holds C chains' points,
        ``step_sizes`` one step size per chain and ``inv_mass`` (C, D) their metrics.
        Each chain's transition has the same law as :meth:`transition`."""
