"""A small reference NUTS, written for the tests from the papers, iterative.

It follows Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15, section 3
(trajectories grown by doubling in a random direction, stopping when a subtree
makes a U-turn or the energy error diverges) with the termination criterion of
Betancourt (2017), "A Conceptual Introduction to Hamiltonian Monte Carlo",
appendix A.4.2: the generalised no-U-turn criterion on the summed momenta rho of a
(sub)trajectory with the sharp momenta M^{-1} p at its two ends; plus the two
checks Stan 2.26 added across the join of each merge (each half extended by the
neighbouring point of the other half).

Unlike the product's recursive builder, the trajectory here is an explicit list of
phase points, grown one leapfrog step at a time; after each new point, every subtree
that the point completes (sizes 2, 4, ..., 2^depth in build order) is checked, and
after a whole doubling the merged trajectory is. Only the *shape* of a transition
(tree depth and leapfrog steps) is computed: it depends on the start, the momentum
and the direction of each doubling, not on which point is drawn, so the tests can
compare it draw by draw with any implementation that visited the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

GradFn = Callable[[torch.Tensor], tuple[float, torch.Tensor]]  # q -> (U(q), dU/dq)


@dataclass
class State:
    q: torch.Tensor
    p: torch.Tensor
    u: float  # potential energy
    grad: torch.Tensor


def leapfrog(s: State, eps: float, inv_mass: torch.Tensor, fn: GradFn) -> State:
    """Stormer-Verlet: half kick, drift, half kick (Neal 2011, eq. 5.18-5.20)."""
    p = s.p - 0.5 * eps * s.grad
    q = s.q + eps * inv_mass * p
    u, grad = fn(q)
    return State(q, p - 0.5 * eps * grad, u, grad)


def hamiltonian(s: State, inv_mass: torch.Tensor) -> float:
    return s.u + 0.5 * float((s.p * inv_mass * s.p).sum())


def _u_turn(points: list[State], inv_mass: torch.Tensor) -> bool:
    """Betancourt's criterion on a trajectory given in spatial order: it has turned
    unless both ends' sharp momenta point along the summed momentum."""
    rho = torch.stack([s.p for s in points]).sum(0)
    left, right = inv_mass * points[0].p, inv_mass * points[-1].p
    return not (float(left @ rho) > 0 and float(right @ rho) > 0)


def turned(left: list[State], right: list[State], inv_mass: torch.Tensor) -> bool:
    """The checks when two adjacent halves (spatial order) are merged: the whole,
    then the left half with the first point of the right one, then the right half
    with the last point of the left one (Stan >= 2.26)."""
    return (
        _u_turn(left + right, inv_mass)
        or _u_turn(left + right[:1], inv_mass)
        or _u_turn(left[-1:] + right, inv_mass)
    )


@dataclass
class Shape:
    tree_depth: int
    num_steps: int
    diverging: bool


def transition_shape(
    start: State,
    eps: float,
    inv_mass: torch.Tensor,
    fn: GradFn,
    direction: Callable[[int, State, State], int],
    max_tree_depth: int = 10,
    max_energy_error: float = 1000.0,
) -> Shape:
    """Grow one NUTS trajectory from ``start`` (whose ``p`` is the fresh momentum).

    ``direction(depth, leftmost, rightmost)`` gives the direction (+1 or -1) of the
    doubling at ``depth``.
    """
    h0 = hamiltonian(start, inv_mass)
    tree = [start]  # spatial order
    steps = 0
    for depth in range(max_tree_depth):
        d = direction(depth, tree[0], tree[-1])
        edge = tree[-1] if d > 0 else tree[0]
        new: list[State] = []  # build order, moving away from the tree
        for i in range(2**depth):
            new.append(leapfrog(new[-1] if new else edge, d * eps, inv_mass, fn))
            steps += 1
            h = hamiltonian(new[-1], inv_mass)
            if not h - h0 <= max_energy_error:  # also NaN
                return Shape(depth + 1, steps, True)
            size = 2
            while size <= 2**depth and (i + 1) % size == 0:
                block = new[i + 1 - size : i + 1]
                if d < 0:
                    block = block[::-1]
                if turned(block[: size // 2], block[size // 2 :], inv_mass):
                    return Shape(depth + 1, steps, False)
                size *= 2
        new_spatial = new if d > 0 else new[::-1]
        left, right = (tree, new_spatial) if d > 0 else (new_spatial, tree)
        if turned(left, right, inv_mass):
            return Shape(depth + 1, steps, False)
        tree = left + right
    return Shape(max_tree_depth, steps, False)
