"""The iterative NUTS tree (``nuts_iterative``) is the recursive one (``nuts.py``).

Both kernels read their random numbers from the same keyed stream (momenta, each
doubling's directions and the block of merge uniforms, ``TreeDraws``), so with the
same stream they must build the same trajectory: the same tree depth, number of
leapfrog steps, divergence flag and acceptance statistic, and the same proposal.
Each transition starts both kernels from the same state, on targets that exercise
every way a tree ends: a Gaussian (U-turns at moderate depth), a Gaussian with a
large step (turns after one or two doublings), an ill-conditioned Gaussian whose
trajectories run to ``max_tree_depth``, and Neal's funnel with a step size that
diverges in the neck. Several chains with their own step sizes and diagonal metrics
go through the iterative kernel at once (masking), each compared with its own
recursive transition.
"""

from __future__ import annotations

import math

import pytest
import torch

from quivers.inference import NUTSKernel
from quivers.inference.batched import BatchedPotential, BatchPoint
from quivers.inference.integrator import PhasePoint
from quivers.inference.nuts_iterative import trailing_ones, transition_iterative

F64 = torch.float64


class Gaussian:
    """U(q) = sum q_i^2 / (2 s_i^2) (float64)."""

    def __init__(self, scales: list[float]) -> None:
        self.prec = 1.0 / torch.tensor(scales, dtype=F64) ** 2
        self.dim = len(scales)

    def value_and_grad(self, q: torch.Tensor) -> tuple[float, torch.Tensor]:
        return 0.5 * float((self.prec * q * q).sum()), self.prec * q


class Funnel:
    """Neal's funnel: v ~ N(0, 3), x_k ~ N(0, exp(v / 2)), in (v, x) directly."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def value_and_grad(self, q: torch.Tensor) -> tuple[float, torch.Tensor]:
        v, x = q[0], q[1:]
        k = x.numel()
        u = v * v / 18.0 + 0.5 * (x * x).sum() * torch.exp(-v) + 0.5 * k * v
        if not bool(torch.isfinite(u)):
            return math.inf, torch.zeros_like(q)
        gv = v / 9.0 - 0.5 * (x * x).sum() * torch.exp(-v) + 0.5 * k
        g = torch.cat([gv.reshape(1), x * torch.exp(-v)])
        if not bool(torch.isfinite(g).all()):
            return math.inf, torch.zeros_like(q)
        return float(u), g


class KeyedDraws:
    """A fixed stream keyed by (kind, doubling): every kernel reading it, in any
    order, sees the same numbers. ``row`` selects one chain of a C-chain stream."""

    def __init__(self, seed: int, chains: int, dim: int, row: int | None = None) -> None:
        self.seed, self.chains, self.dim, self.row = seed, chains, dim, row

    def _gen(self, key: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1000 + key)

    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.row is None else t[self.row : self.row + 1]

    def momentum(self, inv_mass: torch.Tensor) -> torch.Tensor:
        z = torch.randn(self.chains, self.dim, generator=self._gen(999), dtype=F64)
        return self._rows(z).to(inv_mass.dtype) / inv_mass.sqrt()

    def directions(self, depth: int) -> torch.Tensor:
        return self._rows(torch.rand(self.chains, generator=self._gen(2 * depth), dtype=F64))

    def merges(self, depth: int) -> torch.Tensor:
        u = torch.rand(self.chains, 2**depth, generator=self._gen(2 * depth + 1), dtype=F64)
        return self._rows(u)


def _compare(potential, starts, steps, inv_mass, max_depth, transitions, seed=0):
    """Run ``transitions`` iterative transitions of C chains; at each, the recursive
    transition of every chain from the same point with the same stream. Returns the
    tree depths, steps and divergences seen."""
    kernel = NUTSKernel(max_tree_depth=max_depth)
    batched = BatchedPotential(potential, vectorize=False)
    chains, dim = starts.shape
    points = [PhasePoint(q, *potential.value_and_grad(q)) for q in starts]
    seen = []
    for t in range(transitions):
        state = BatchPoint.stack(points)
        draws = KeyedDraws(seed + t, chains, dim)
        new, infos = transition_iterative(kernel, batched, state, steps, inv_mass, draws)
        for c in range(chains):
            row = KeyedDraws(seed + t, chains, dim, row=c)
            ref, info = kernel.transition_recursive(
                potential, points[c], steps[c], inv_mass[c], draws=row
            )
            got = infos[c]
            where = f"transition {t}, chain {c}"
            assert got.tree_depth == info.tree_depth, where
            assert got.num_steps == info.num_steps, where
            assert got.diverging == info.diverging, where
            assert got.accept_stat == pytest.approx(info.accept_stat, rel=1e-9, abs=1e-12), where
            assert torch.allclose(new.q[c], ref.q, rtol=1e-9, atol=1e-12), where
            assert new.potential[c] == pytest.approx(ref.potential, rel=1e-9, abs=1e-12)
            assert got.energy == pytest.approx(info.energy, rel=1e-9, abs=1e-12), where
            seen.append((info.tree_depth, info.num_steps, info.diverging))
            points[c] = ref
    return seen


def test_trailing_ones_count_the_halves_completed_at_a_leaf():
    assert [trailing_ones(n) for n in range(8)] == [0, 1, 0, 2, 0, 1, 0, 3]


def test_iterative_equals_recursive_on_a_gaussian_with_per_chain_steps_and_metrics():
    scales = [1.0, 2.0, 0.5, 1.5, 0.7, 3.0]
    potential = Gaussian(scales)
    g = torch.Generator().manual_seed(1)
    starts = torch.randn(3, 6, generator=g, dtype=F64)
    inv_mass = torch.stack(
        [
            torch.ones(6, dtype=F64),
            torch.tensor(scales, dtype=F64) ** 2,
            torch.full((6,), 0.5, dtype=F64),
        ]
    )
    seen = _compare(potential, starts, [0.3, 0.45, 0.2], inv_mass, 10, 25)
    depths = {d for d, _, _ in seen}
    assert len(depths) >= 3  # trees of several depths, chains finishing at different times
    assert any(s < 2**d - 1 for d, s, _ in seen)  # a subtree turned inside


def test_iterative_equals_recursive_when_trees_turn_early():
    potential = Gaussian([1.0, 1.0, 1.0])
    starts = torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    seen = _compare(potential, starts, [1.8, 1.6], torch.ones(2, 3, dtype=F64), 10, 30)
    assert min(d for d, _, _ in seen) == 1
    assert any(s < 2**d - 1 for d, s, _ in seen)  # stopped inside a subtree


def test_iterative_equals_recursive_up_to_max_tree_depth():
    potential = Gaussian([1.0, 0.02])
    starts = torch.tensor([[1.0, 0.01], [-0.5, 0.02]], dtype=F64)
    seen = _compare(potential, starts, [0.01, 0.012], torch.ones(2, 2, dtype=F64), 6, 8)
    assert any(d == 6 and s == 2**6 - 1 for d, s, _ in seen)  # the cap, every step taken


def test_iterative_equals_recursive_on_a_diverging_funnel():
    potential = Funnel(5)
    g = torch.Generator().manual_seed(3)
    starts = torch.cat(
        [
            torch.tensor([[-3.0], [1.0], [-1.5]], dtype=F64),
            torch.randn(3, 4, generator=g, dtype=F64) * 0.2,
        ],
        1,
    )
    seen = _compare(potential, starts, [0.9, 0.2, 0.6], torch.ones(3, 5, dtype=F64), 8, 25)
    assert any(dv for _, _, dv in seen) and not all(dv for _, _, dv in seen)


def test_a_masked_chain_is_left_as_it_was():
    """A chain that stops after its first leapfrog step (divergence) keeps its point,
    while the others run long trajectories in the same transition."""
    potential = Funnel(5)
    starts = torch.zeros(3, 5, dtype=F64)
    starts[:, 0] = -4.0
    kernel = NUTSKernel(max_tree_depth=8)
    batched = BatchedPotential(potential, vectorize=False)
    points = [PhasePoint(q, *potential.value_and_grad(q)) for q in starts]
    state = BatchPoint.stack(points)
    new, infos = transition_iterative(
        kernel, batched, state, [0.05, 1e3, 0.05], torch.ones(3, 5, dtype=F64), KeyedDraws(0, 3, 5)
    )
    assert infos[1].diverging and infos[1].num_steps == 1 and infos[1].tree_depth == 1
    assert torch.equal(new.q[1], starts[1]) and new.potential[1] == points[1].potential
    assert infos[0].num_steps > 3 and infos[2].num_steps > 3
