"""The multinomial NUTS transition for C chains at once (vectorised chains).

The same algorithm as :mod:`quivers.inference.nuts`, run in lock step: every chain
doubles its trajectory in its own random direction, all chains at the same depth
``j`` build a subtree of 2**j leapfrog steps together, and every leapfrog step is one
batched call of the potential. Each chain keeps its own step size, metric, tree
depth, divergence flag and proposal; a chain whose subtree turned or diverged is
*masked*: it takes no further steps (its rows are skipped in the potential call) and
its statistics stop changing, while the others go on. The recursion ends when every
chain has stopped, so a transition costs as many batched steps as the longest
trajectory among the chains. See ``docs/dev/inference.md`` ("Vectorised chains").

Random numbers are drawn only when some chain needs them, in the order the
sequential kernel draws them, so a batch of one chain reproduces
:meth:`~quivers.inference.nuts.NUTSKernel.transition` draw for draw.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from quivers.inference.batched import (
    BatchedPotential,
    BatchPoint,
    leapfrog_batch,
    pick,
    pick_list,
    row_scalars,
    rowdot,
    rowdots,
    sample_momentum_batch,
)
from quivers.inference.kernel import TransitionInfo
from quivers.inference.nuts import _logaddexp

if TYPE_CHECKING:
    from quivers.inference.nuts import NUTSKernel


Q, G, P, PS = 0, 1, 2, 3  # the parts of an end: position, gradient, momentum, M^-1 p


class _Trees:
    """C sub-trajectories: both ends (each a (C, 4, D) stack of position, gradient,
    momentum and sharp momentum, so that choosing ends is one operation), the
    proposal (position, potential, gradient, Hamiltonian), and per-chain statistics.
    Rows of chains that are not working hold stale values."""

    __slots__ = (
        "left",
        "right",
        "zq",
        "zu",
        "zg",
        "zh",
        "log_weight",
        "rho",
        "turning",
        "diverging",
        "sum_accept",
        "num_steps",
    )

    def __init__(
        self,
        q: torch.Tensor,
        u: list[float],
        g: torch.Tensor,
        p: torch.Tensor,
        ps: torch.Tensor,
        h: list[float],
        log_weight: list[float],
    ) -> None:
        c = q.shape[0]
        self.left = self.right = torch.stack([q, g, p, ps], dim=1)
        self.zq, self.zg, self.rho = q, g, p
        self.zu, self.zh = u, h
        self.log_weight = log_weight
        self.turning = [False] * c
        self.diverging = [False] * c
        self.sum_accept = [0.0] * c
        self.num_steps = [0] * c

    @classmethod
    def from_end(
        cls, end: torch.Tensor, u: list[float], h: list[float], log_weight: list[float]
    ) -> _Trees:
        """One-point trees from their end (C, 4, D), as built by a leapfrog step."""
        tree = cls.__new__(cls)
        c = end.shape[0]
        tree.left = tree.right = end
        tree.zq, tree.zg, tree.rho = end[:, Q], end[:, G], end[:, P]
        tree.zu, tree.zh = u, h
        tree.log_weight = log_weight
        tree.turning = [False] * c
        tree.diverging = [False] * c
        tree.sum_accept = [0.0] * c
        tree.num_steps = [0] * c
        return tree

    def edge(self, forward: list[bool]) -> torch.Tensor:
        """The end each chain extends, (C, 4, D)."""
        return pick(forward, self.right, self.left)

    def take_proposal(self, mask: list[bool], other: _Trees) -> None:
        self.zq = pick(mask, other.zq, self.zq)
        self.zg = pick(mask, other.zg, self.zg)
        self.zu = pick_list(mask, other.zu, self.zu)
        self.zh = pick_list(mask, other.zh, self.zh)


def _merge(old: _Trees, new: _Trees, forward: list[bool], rows: list[bool]) -> None:
    """Extend ``old`` by ``new`` on ``rows`` (as the sequential ``_merge``: ends,
    weight, rho, and the no-U-turn checks, including those across the join)."""

    # the merged tree's left half is old going forward, new going backward; only the
    # ends' p and p-sharp rows enter the checks, so only those are picked
    def halves(row: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        o_left, o_right, n_left, n_right = (
            old.left[:, row],
            old.right[:, row],
            new.left[:, row],
            new.right[:, row],
        )
        return (
            pick(forward, o_left, n_left),
            pick(forward, o_right, n_right),
            pick(forward, n_left, o_left),
            pick(forward, n_right, o_right),
        )

    lh_left_ps, lh_right_ps, rh_left_ps, rh_right_ps = halves(PS)
    rh_left_p = pick(forward, new.left[:, P], old.left[:, P])
    lh_right_p = pick(forward, old.right[:, P], new.right[:, P])
    rho_left, rho_right = pick(forward, old.rho, new.rho), pick(forward, new.rho, old.rho)
    rho = old.rho + new.rho  # = rho_left + rho_right bit for bit (addition commutes)
    # across the join: the left half plus the right half's first point, and back
    rho_a = rho_left + rh_left_p
    rho_b = rho_right + lh_right_p
    dots = rowdots(
        [
            (lh_left_ps, rho),
            (rh_right_ps, rho),
            (lh_left_ps, rho_a),
            (rh_left_ps, rho_a),
            (lh_right_ps, rho_b),
            (rh_right_ps, rho_b),
        ]
    )
    old.right = pick([r and f for r, f in zip(rows, forward, strict=True)], new.right, old.right)
    old.left = pick([r and not f for r, f in zip(rows, forward, strict=True)], new.left, old.left)
    old.rho = pick(rows, rho, old.rho)
    for c, on in enumerate(rows):
        if not on:
            continue
        turning = not (dots[0][c] > 0.0 and dots[1][c] > 0.0)
        if not turning:
            turning = not (dots[2][c] > 0.0 and dots[3][c] > 0.0)
        if not turning:
            turning = not (dots[4][c] > 0.0 and dots[5][c] > 0.0)
        old.log_weight[c] = _logaddexp(old.log_weight[c], new.log_weight[c])
        old.turning[c] = turning
        old.sum_accept[c] += new.sum_accept[c]
        old.num_steps[c] += new.num_steps[c]


class _Builder:
    """One batched transition's fixed quantities and the recursive subtree builder."""

    def __init__(
        self,
        kernel: NUTSKernel,
        potential: BatchedPotential,
        step_sizes: list[float],
        inv_mass: torch.Tensor,
        h0: list[float],
    ) -> None:
        self.max_energy_error = kernel.max_energy_error
        self.potential = potential
        self.step_sizes = step_sizes
        self.inv_mass = inv_mass
        self.h0 = h0

    def leaf(self, start: torch.Tensor, forward: list[bool], active: list[bool]) -> _Trees:
        steps = [s if f else -s for s, f in zip(self.step_sizes, forward, strict=True)]
        fused = self.potential.fused_leapfrog(start, row_scalars(steps, start), self.inv_mass)
        if fused is not None:  # compile=True: the whole step is one graph
            end, u1, kinetic = fused
            u1 = [u if a else math.inf for u, a in zip(u1, active, strict=True)]
        else:
            q, g, p = start[:, Q], start[:, G], start[:, P]
            q1, u1, g1, p1 = leapfrog_batch(self.potential, q, g, p, steps, self.inv_mass, active)
            ps = self.inv_mass * p1
            kinetic = rowdot(p1, ps)
            end = torch.stack([q1, g1, p1, ps], dim=1)
        h = [
            u + 0.5 * k if math.isfinite(u) else math.inf for u, k in zip(u1, kinetic, strict=True)
        ]
        delta = [hc - h0 if hc == hc else math.inf for hc, h0 in zip(h, self.h0, strict=True)]
        tree = _Trees.from_end(end, u1, h, [-d for d in delta])
        tree.num_steps = [1] * len(delta)
        for c, d in enumerate(delta):
            if d > self.max_energy_error:
                tree.diverging[c] = True
                tree.log_weight[c] = -math.inf
            else:
                tree.sum_accept[c] = min(1.0, math.exp(-d)) if d > 0 else 1.0
        return tree

    def build(
        self, start: torch.Tensor, forward: list[bool], depth: int, active: list[bool]
    ) -> _Trees:
        if depth == 0:
            return self.leaf(start, forward, active)
        first = self.build(start, forward, depth - 1, active)
        go_on = [
            a and not (t or d)
            for a, t, d in zip(active, first.turning, first.diverging, strict=True)
        ]
        if not any(go_on):
            return first
        second = self.build(first.edge(forward), forward, depth - 1, go_on)
        merge = [False] * len(go_on)
        for c, on in enumerate(go_on):
            if not on:
                continue
            if second.turning[c] or second.diverging[c]:
                first.sum_accept[c] += second.sum_accept[c]
                first.num_steps[c] += second.num_steps[c]
                first.turning[c] = second.turning[c]
                first.diverging[c] = second.diverging[c]
            else:
                merge[c] = True
        if any(merge):
            # uniform progressive sampling within a subtree
            u = torch.rand(len(merge)).tolist()
            take = [
                m and u[c] < math.exp(second.log_weight[c] - total)
                for c, (m, total) in enumerate(
                    zip(
                        merge,
                        [
                            _logaddexp(a, b)
                            for a, b in zip(first.log_weight, second.log_weight, strict=True)
                        ],
                        strict=True,
                    )
                )
            ]
            first.take_proposal(take, second)
            _merge(first, second, forward, merge)
        return first


def transition_batch(
    kernel: NUTSKernel,
    potential: BatchedPotential,
    state: BatchPoint,
    step_sizes: list[float],
    inv_mass: torch.Tensor,
) -> tuple[BatchPoint, list[TransitionInfo]]:
    """One NUTS transition of every chain in ``state`` (see the module docstring)."""
    chains = state.q.shape[0]
    p0 = sample_momentum_batch(inv_mass)
    ps0 = inv_mass * p0
    h0 = [u + 0.5 * k for u, k in zip(state.potential, rowdot(p0, ps0), strict=True)]
    builder = _Builder(kernel, potential, step_sizes, inv_mass, h0)
    tree = _Trees(state.q, state.potential, state.grad, p0, ps0, h0, [0.0] * chains)
    sample = _Trees(state.q, state.potential, state.grad, p0, ps0, h0, [0.0] * chains)
    depth = [0] * chains
    diverging = [False] * chains
    sum_accept = [0.0] * chains
    num_steps = [0] * chains
    active = [True] * chains
    for j in range(kernel.max_tree_depth):
        if not any(active):
            break
        u = torch.rand(chains).tolist()
        forward = [x < 0.5 for x in u]
        sub = builder.build(tree.edge(forward), forward, j, active)
        go_on = [False] * chains
        need_draw = False
        for c in range(chains):
            if not active[c]:
                continue
            sum_accept[c] += sub.sum_accept[c]
            num_steps[c] += sub.num_steps[c]
            depth[c] += 1
            if sub.diverging[c]:
                diverging[c] = True
            elif not sub.turning[c]:
                go_on[c] = True
                need_draw = need_draw or not sub.log_weight[c] > tree.log_weight[c]
        # biased progressive sampling: prefer the new subtree (Betancourt 2017, A.3.2)
        u = torch.rand(chains).tolist() if need_draw else [math.inf] * chains
        take = [
            on
            and (
                sub.log_weight[c] > tree.log_weight[c]
                or u[c] < math.exp(sub.log_weight[c] - tree.log_weight[c])
            )
            for c, on in enumerate(go_on)
        ]
        sample.take_proposal(take, sub)
        _merge(tree, sub, forward, go_on)
        active = [on and not t for on, t in zip(go_on, tree.turning, strict=True)]
    infos = [
        TransitionInfo(
            sum_accept[c] / max(num_steps[c], 1),
            diverging[c],
            num_steps[c],
            depth[c],
            sample.zh[c],
        )
        for c in range(chains)
    ]
    return BatchPoint(sample.zq, sample.zu, sample.zg), infos
