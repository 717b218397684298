"""The NUTS kernel's trajectories, draw by draw, against ``reference_nuts``.

The sequential single-chain kernel (``NUTSKernel.transition``) runs on Gaussian
targets through a potential that records every point where it evaluates the
gradient. From those points the test reads the momentum the kernel drew (from its
first leapfrog step) and the direction of each doubling (which end the doubling's
first point leaves from); the reference then grows its own trajectory with them and
must stop at the same tree depth after the same number of leapfrog steps. Which
point a transition returns does not enter the comparison, so the test does not
depend on how the kernel consumes random numbers.
"""

from __future__ import annotations

import math

import pytest
import torch
from inference_models import StandardNormal
from reference_nuts import State, leapfrog, transition_shape

from quivers.inference import MCMC, NUTSKernel
from quivers.inference.integrator import PhasePoint


class GaussianPotential:
    """U(q) = sum q_i^2 / (2 s_i^2), recording where it is evaluated."""

    def __init__(self, scales: torch.Tensor) -> None:
        self.prec = 1.0 / scales.double() ** 2
        self.seen: list[torch.Tensor] = []

    def energy(self, q: torch.Tensor) -> tuple[float, torch.Tensor]:
        return 0.5 * float((self.prec * q * q).sum()), self.prec * q

    def value_and_grad(self, q: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.seen.append(q.detach().clone())
        return self.energy(q)


def _replay(potential, start, eps, inv_mass, max_tree_depth):
    """The reference's shape of the transition whose gradient points are recorded."""
    seen = list(potential.seen)
    u0, g0 = potential.energy(start.q)
    # first step: q1 = q0 + eps M^-1 (p0 - eps/2 grad0), taking its direction as +1
    # (the trajectory with -p0 and every direction flipped is the same one)
    p0 = (seen[0] - start.q) / (eps * inv_mass) + 0.5 * eps * g0
    origin = State(start.q, p0, u0, g0)
    taken = [0]  # leapfrog steps the reference has asked directions for

    def direction(depth: int, left: State, right: State) -> int:
        index = 2**depth - 1  # the first point of this doubling, in build order
        if index >= len(seen):
            raise AssertionError(
                f"the reference goes on to depth {depth + 1} but the kernel stopped "
                f"after {len(seen)} leapfrog steps"
            )
        taken[0] = index
        target = seen[index]
        for d, edge in ((1, right), (-1, left)):
            q = leapfrog(edge, d * eps, inv_mass, potential.energy).q
            if torch.allclose(q, target, rtol=1e-9, atol=1e-9):
                return d
        raise AssertionError(f"the kernel's point {index} leaves from neither end of the tree")

    return transition_shape(origin, eps, inv_mass, potential.energy, direction, max_tree_depth)


def _chain(scales, inv_mass, eps, draws, max_tree_depth=10):
    """Run ``draws`` transitions of the product kernel; compare each with the reference."""
    potential = GaussianPotential(scales)
    kernel = NUTSKernel(step_size=eps, max_tree_depth=max_tree_depth)
    q = torch.randn(scales.shape, dtype=torch.float64) * scales.double()
    u, g = potential.energy(q)
    point = PhasePoint(q, u, g)
    depths = []
    for i in range(draws):
        potential.seen.clear()
        new, info = kernel.transition(potential, point, eps, inv_mass)
        want = _replay(potential, point, eps, inv_mass, max_tree_depth)
        got = (info.tree_depth, info.num_steps, info.diverging)
        assert got == (want.tree_depth, want.num_steps, want.diverging), (
            f"draw {i}: kernel (depth, steps, diverging) {got}, reference {want}"
        )
        assert len(potential.seen) == info.num_steps  # one gradient per leapfrog step
        depths.append(info.tree_depth)
        point = new
    return depths


@pytest.mark.parametrize(
    ("scales", "inv_mass", "eps"),
    [
        pytest.param([1.0] * 4, [1.0] * 4, 0.4, id="isotropic"),
        pytest.param([1.0, 3.0, 0.5, 2.0, 1.5], [1.0] * 5, 0.3, id="anisotropic"),
        pytest.param([1.0, 3.0, 0.5, 2.0, 1.5], [0.8, 6.0, 0.3, 3.0, 2.0], 0.5, id="metric"),
    ],
)
def test_tree_depth_and_leapfrog_steps_match_the_reference(scales, inv_mass, eps):
    depths = _chain(
        torch.tensor(scales, dtype=torch.float64),
        torch.tensor(inv_mass, dtype=torch.float64),
        eps,
        draws=60,
    )
    assert len(set(depths)) >= 2  # the draws exercise more than one tree depth


def test_tree_depth_cap_matches_the_reference():
    depths = _chain(
        torch.tensor([1.0, 10.0], dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
        0.05,
        draws=10,
        max_tree_depth=4,
    )
    assert max(depths) == 4


def _reference_mean_steps(dim: int, eps: float, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of the reference's leapfrog steps per transition on
    Normal(0, I_dim), each started at stationarity (q, p ~ Normal(0, I)) with random
    directions."""
    g = torch.Generator().manual_seed(seed)
    ones = torch.ones(dim, dtype=torch.float64)

    def energy(q):
        return 0.5 * float(q @ q), q.clone()

    def direction(depth, left, right):
        return 1 if float(torch.rand((), generator=g)) < 0.5 else -1

    steps = []
    for _ in range(n):
        q = torch.randn(dim, generator=g, dtype=torch.float64)
        p = torch.randn(dim, generator=g, dtype=torch.float64)
        u, grad = energy(q)
        steps.append(transition_shape(State(q, p, u, grad), eps, ones, energy, direction).num_steps)
    t = torch.tensor(steps, dtype=torch.float64)
    return float(t.mean()), float(t.std()) / math.sqrt(n)


def test_gradients_per_draw_on_an_isotropic_gaussian():
    """Through the MCMC driver, fixed step size 0.3 on Normal(0, I_10): the mean number
    of gradients (leapfrog steps) per draw lies within 4 combined standard errors of
    the reference's expectation (14.1 with standard error 0.14 from 300 transitions;
    the kernel's mean is 14.3 with standard error 0.13, so the band is about
    14.1 +- 0.8, while a trajectory that stops a doubling early or late is off by a
    factor near 2)."""
    eps, n = 0.3, 300
    kernel = NUTSKernel(step_size=eps, adapt_step_size=False, adapt_mass_matrix=False)
    result = MCMC(kernel, num_warmup=0, num_samples=n, seed=11).run(StandardNormal(10), None, {})
    got = result.num_steps.double().flatten()
    want, want_se = _reference_mean_steps(10, eps, n, seed=12)
    se = math.sqrt(float(got.var()) / got.numel() + want_se**2)
    assert abs(float(got.mean()) - want) < 4 * se, (float(got.mean()), want, se)
    assert int(result.divergence_counts.sum()) == 0
