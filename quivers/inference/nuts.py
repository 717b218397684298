"""The No-U-Turn Sampler with multinomial trajectory sampling.

Trajectories are built by repeated doubling in a random direction (Hoffman & Gelman,
2014, "The No-U-Turn Sampler", JMLR 15). As in Betancourt (2017), "A Conceptual
Introduction to Hamiltonian Monte Carlo", appendix A, the draw is taken from the
whole trajectory with weights exp(-H) (multinomial sampling: uniform progressive
sampling inside a subtree, biased progressive sampling towards each new subtree at
the top level), and the termination criterion is the generalised no-U-turn
criterion on the summed momenta ``rho`` with the sharp momenta M^{-1} p at both ends,
checked on every merged subtree and, additionally, across the two halves of each
merge (the extra checks Stan added in 2.26 so that short trajectories on
near-Gaussian targets still stop). A point whose energy error exceeds
``max_energy_error`` marks the transition divergent and ends it.
"""

from __future__ import annotations

import math

import torch

from quivers.inference.batched import BatchedPotential, BatchPoint
from quivers.inference.integrator import (
    MAX_ENERGY_ERROR,
    PhasePoint,
    kinetic,
    leapfrog,
    sample_momentum,
)
from quivers.inference.kernel import MCMCKernel, TransitionInfo
from quivers.inference.potential import Potential


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def _no_u_turn(p_sharp_left: torch.Tensor, p_sharp_right: torch.Tensor, rho: torch.Tensor) -> bool:
    return float(torch.dot(p_sharp_left, rho)) > 0.0 and float(torch.dot(p_sharp_right, rho)) > 0.0


class _Tree:
    """A sub-trajectory: its two ends, its proposal, and its summary statistics."""

    __slots__ = (
        "left",
        "p_left",
        "ps_left",
        "right",
        "p_right",
        "ps_right",
        "proposal",
        "energy",
        "log_weight",
        "rho",
        "turning",
        "diverging",
        "sum_accept",
        "num_steps",
    )

    def __init__(
        self,
        point: PhasePoint,
        p: torch.Tensor,
        p_sharp: torch.Tensor,
        log_weight: float,
        energy: float,
    ) -> None:
        self.left = self.right = self.proposal = point
        self.energy = energy  # the Hamiltonian at the proposal
        self.p_left = self.p_right = self.rho = p
        self.ps_left = self.ps_right = p_sharp
        self.log_weight = log_weight
        self.turning = False
        self.diverging = False
        self.sum_accept = 0.0
        self.num_steps = 0

    def edge(self, direction: int) -> tuple[PhasePoint, torch.Tensor]:
        return (self.right, self.p_right) if direction > 0 else (self.left, self.p_left)


def _merge(old: _Tree, new: _Tree, direction: int) -> None:
    """Extend ``old`` by ``new`` (built in ``direction``) in place: ends, weight, rho,
    and the no-U-turn checks on the merged tree. The proposal is chosen by the caller."""
    left, right = (old, new) if direction > 0 else (new, old)
    rho = left.rho + right.rho
    turning = not _no_u_turn(left.ps_left, right.ps_right, rho)
    if not turning:
        # across the join (Stan >= 2.26): left half plus the first point of the right
        turning = not _no_u_turn(left.ps_left, right.ps_left, left.rho + right.p_left)
    if not turning:
        turning = not _no_u_turn(left.ps_right, right.ps_right, right.rho + left.p_right)
    old.left, old.p_left, old.ps_left = left.left, left.p_left, left.ps_left
    old.right, old.p_right, old.ps_right = right.right, right.p_right, right.ps_right
    old.rho = rho
    old.log_weight = _logaddexp(old.log_weight, new.log_weight)
    old.turning = turning
    old.sum_accept += new.sum_accept
    old.num_steps += new.num_steps


class NUTSKernel(MCMCKernel):
    """Multinomial NUTS with a diagonal metric.

    ``step_size`` is the initial step size (adapted during warmup by dual averaging
    towards ``target_accept`` unless ``adapt_step_size=False``); ``max_tree_depth``
    caps a trajectory at 2**max_tree_depth leapfrog steps; ``adapt_mass_matrix``
    turns on Stan's windowed diagonal metric adaptation (see
    :mod:`quivers.inference.adaptation`).
    """

    def __init__(
        self,
        step_size: float = 0.1,
        max_tree_depth: int = 10,
        target_accept: float = 0.8,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        max_energy_error: float = MAX_ENERGY_ERROR,
    ) -> None:
        super().__init__(
            step_size, adapt_step_size, adapt_mass_matrix, target_accept, max_energy_error
        )
        if max_tree_depth < 1:
            raise ValueError(f"max_tree_depth must be >= 1, got {max_tree_depth}")
        self.max_tree_depth = int(max_tree_depth)

    def transition(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
    ) -> tuple[PhasePoint, TransitionInfo]:
        p0 = sample_momentum(inv_mass)
        h0 = point.potential + kinetic(p0, inv_mass)
        tree = _Tree(point, p0, inv_mass * p0, 0.0, h0)
        sample, energy = point, h0
        depth = 0
        diverging = False
        sum_accept = 0.0
        num_steps = 0
        while depth < self.max_tree_depth:
            direction = 1 if torch.rand(()).item() < 0.5 else -1
            start, p_start = tree.edge(direction)
            sub = self._build(potential, start, p_start, direction, depth, step_size, inv_mass, h0)
            sum_accept += sub.sum_accept
            num_steps += sub.num_steps
            depth += 1
            if sub.diverging:
                diverging = True
                break
            if sub.turning:
                break
            # biased progressive sampling: prefer the new subtree (Betancourt 2017, A.3.2)
            if sub.log_weight > tree.log_weight or (
                torch.rand(()).item() < math.exp(sub.log_weight - tree.log_weight)
            ):
                sample, energy = sub.proposal, sub.energy
            _merge(tree, sub, direction)
            if tree.turning:
                break
        accept = sum_accept / max(num_steps, 1)
        return sample, TransitionInfo(accept, diverging, num_steps, depth, energy)

    def transition_batch(
        self,
        potential: BatchedPotential,
        state: BatchPoint,
        step_sizes: list[float],
        inv_mass: torch.Tensor,
    ) -> tuple[BatchPoint, list[TransitionInfo]]:
        from quivers.inference.nuts_batched import transition_batch

        return transition_batch(self, potential, state, step_sizes, inv_mass)

    def _build(
        self,
        potential: Potential,
        start: PhasePoint,
        p: torch.Tensor,
        direction: int,
        depth: int,
        step_size: float,
        inv_mass: torch.Tensor,
        h0: float,
    ) -> _Tree:
        if depth == 0:
            point, p_new = leapfrog(potential, start, p, direction * step_size, inv_mass)
            h = (
                point.potential + kinetic(p_new, inv_mass)
                if math.isfinite(point.potential)
                else math.inf
            )
            delta = h - h0 if h == h else math.inf
            tree = _Tree(point, p_new, inv_mass * p_new, -delta, h)
            tree.num_steps = 1
            if delta > self.max_energy_error:
                tree.diverging = True
                tree.log_weight = -math.inf
            else:
                tree.sum_accept = min(1.0, math.exp(-delta)) if delta > 0 else 1.0
            return tree
        first = self._build(potential, start, p, direction, depth - 1, step_size, inv_mass, h0)
        if first.turning or first.diverging:
            return first
        edge, p_edge = first.edge(direction)
        second = self._build(potential, edge, p_edge, direction, depth - 1, step_size, inv_mass, h0)
        if second.turning or second.diverging:
            first.sum_accept += second.sum_accept
            first.num_steps += second.num_steps
            first.turning = second.turning
            first.diverging = second.diverging
            return first
        # uniform progressive sampling within a subtree
        total = _logaddexp(first.log_weight, second.log_weight)
        if torch.rand(()).item() < math.exp(second.log_weight - total):
            first.proposal, first.energy = second.proposal, second.energy
        _merge(first, second, direction)
        return first
