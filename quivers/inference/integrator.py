"""Phase-space primitives shared by HMC and NUTS: the Euclidean-Gaussian kinetic
energy with a diagonal metric, and the leapfrog (Stormer-Verlet) integrator.

With inverse metric ``inv_mass`` (the diagonal of M^{-1}), momenta are drawn from
Normal(0, M) and K(p) = p^T M^{-1} p / 2 (Neal, 2011, "MCMC using Hamiltonian
dynamics"; Betancourt, 2017, "A Conceptual Introduction to Hamiltonian Monte Carlo").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quivers.inference.potential import Potential

#: an energy error above this marks a transition divergent (Stan's threshold)
MAX_ENERGY_ERROR = 1000.0


@dataclass
class PhasePoint:
    """Position, potential energy and its gradient (momentum travels separately)."""

    q: torch.Tensor
    potential: float
    grad: torch.Tensor


def sample_momentum(inv_mass: torch.Tensor) -> torch.Tensor:
    return torch.randn_like(inv_mass) / inv_mass.sqrt()


def kinetic(p: torch.Tensor, inv_mass: torch.Tensor) -> float:
    return 0.5 * float(torch.dot(p, inv_mass * p))


def leapfrog(
    potential: Potential,
    point: PhasePoint,
    p: torch.Tensor,
    step: float,
    inv_mass: torch.Tensor,
) -> tuple[PhasePoint, torch.Tensor]:
    """One leapfrog step of size ``step`` (negative to integrate backwards)."""
    p_half = p - (0.5 * step) * point.grad
    q = point.q + step * (inv_mass * p_half)
    energy, grad = potential.value_and_grad(q)
    p_new = p_half - (0.5 * step) * grad
    return PhasePoint(q, energy, grad), p_new


def find_reasonable_step_size(
    potential: Potential,
    point: PhasePoint,
    inv_mass: torch.Tensor,
    step_size: float,
    max_iter: int = 100,
) -> float:
    """Heuristic initial step size (Hoffman & Gelman, 2014, Algorithm 4).

    Doubles or halves ``step_size`` until the acceptance probability of one leapfrog
    step from ``point`` crosses 0.8 (Stan's threshold).
    """
    log_threshold = torch.log(torch.tensor(0.8)).item()

    def delta(eps: float) -> float:
        p = sample_momentum(inv_mass)
        h0 = point.potential + kinetic(p, inv_mass)
        new, p_new = leapfrog(potential, point, p, eps, inv_mass)
        h1 = new.potential + kinetic(p_new, inv_mass)
        d = h0 - h1
        return d if d == d else -float("inf")

    eps = float(step_size)
    direction = 1 if delta(eps) > log_threshold else -1
    for _ in range(max_iter):
        d = delta(eps)
        if direction == 1 and not d > log_threshold:
            break
        if direction == -1 and not d < log_threshold:
            break
        eps = eps * 2.0 if direction == 1 else eps / 2.0
        if eps > 1e7 or eps < 1e-10:
            break
    return eps
