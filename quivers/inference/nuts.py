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
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from quivers.inference.nuts_iterative import TreeDraws


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


TREES = ("iterative", "recursive")
#: the default tree is iterative for several chains up to this many coordinates: its
#: checkpoints are (chains, levels, 7, D), tens of MB per step for a lifted network;
#: on the lifted RNN (66,048 coordinates, four compiled chains) it took 7.96 ms per
#: chain-gradient against the recursive lock-step tree's 3.12 (docs/benchmarks.md)
ITERATIVE_MAX_DIM = 4096
#: with ``compile=True`` the iterative tree's compiled transition runs its leapfrog
#: steps in unrolled chunks of this many (see ``NUTSKernel``'s ``leaves_per_call``)
LEAVES_PER_CALL = 4


def _uniform(block: list[float] | None, index: int) -> float:
    """A merge's uniform: drawn now, or entry ``index`` of the doubling's keyed block."""
    return torch.rand(()).item() if block is None else block[index]


def _one_chain(potential: Potential) -> BatchedPotential:
    """``potential`` as a batch of one chain (made once per potential)."""
    batched = getattr(potential, "_one_chain", None)
    if batched is None:
        batched = BatchedPotential(potential)
        potential._one_chain = batched  # type: ignore[attr-defined]
    return batched


def _compiled_tree_usable(batched: BatchedPotential) -> bool:
    """Whether ``compile=True`` is on and nothing failed to compile so far: the
    potential's own graph and the iterative tree's graphs."""
    compiled = getattr(batched.potential, "compiled", None)
    return (
        compiled is not None
        and compiled.error is None
        and batched.vectorize
        and all(graph.error is None for graph in batched.transition_graphs.values())
    )


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

    ``tree`` chooses how trajectories are built: ``"recursive"`` (Python numbers per
    tree node, :meth:`transition_recursive`), ``"iterative"`` (flat tensors, one
    masked update per leapfrog step, :mod:`quivers.inference.nuts_iterative`, and
    with ``compile=True`` a whole transition per compiled graph,
    :mod:`quivers.inference.nuts_graph`), or None (the default): the iterative tree for several vectorised chains
    and, with ``compile=True``, for one chain too, where it is faster; the recursive
    one for a single eager chain (or one whose compilation failed), where it is, and
    for models of more than ``ITERATIVE_MAX_DIM`` coordinates. Both are the same
    Markov kernel (``tests/inference/test_nuts_iterative.py``) but read their random
    numbers in a different order: a given seed gives the same draws for one chain
    whichever chain method runs it, as long as the tree is the same (so one chain's
    draws under the default tree differ between ``compile=True`` and ``False``).

    ``leaves_per_call`` (a power of two; ``LEAVES_PER_CALL`` = 4, chosen by
    measurement, ``docs/benchmarks.md``, "Issue 16, ninth round") only matters for
    the compiled iterative tree: a doubling of 2**j leaves runs in unrolled chunks of
    min(2**j, leaves_per_call) leaves (the transition's graph takes tens of seconds
    to compile the first time, more for larger chunks). It does not change the
    chain: a chunk of leaves is the same arithmetic as one leaf at a time.
    """

    def __init__(
        self,
        step_size: float = 0.1,
        max_tree_depth: int = 10,
        target_accept: float = 0.8,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        max_energy_error: float = MAX_ENERGY_ERROR,
        tree: str | None = None,
        leaves_per_call: int = LEAVES_PER_CALL,
    ) -> None:
        super().__init__(
            step_size, adapt_step_size, adapt_mass_matrix, target_accept, max_energy_error
        )
        if max_tree_depth < 1:
            raise ValueError(f"max_tree_depth must be >= 1, got {max_tree_depth}")
        if tree is not None and tree not in TREES:
            raise ValueError(f"tree must be None or one of {TREES}, got {tree!r}")
        if leaves_per_call < 1 or leaves_per_call & (leaves_per_call - 1):
            raise ValueError(f"leaves_per_call must be a power of two, got {leaves_per_call}")
        self.max_tree_depth = int(max_tree_depth)
        self.tree = tree
        self.leaves_per_call = int(leaves_per_call)

    def transition(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
    ) -> tuple[PhasePoint, TransitionInfo]:
        if self.tree == "recursive" or (
            self.tree is None
            and (
                getattr(potential, "compiled", None) is None  # eager: recursive is faster
                or potential.dim > ITERATIVE_MAX_DIM
                or not _compiled_tree_usable(_one_chain(potential))
            )
        ):
            return self.transition_recursive(potential, point, step_size, inv_mass)
        from quivers.inference.nuts_iterative import transition_iterative

        batch, infos = transition_iterative(
            self, _one_chain(potential), BatchPoint.stack([point]), [step_size], inv_mass[None]
        )
        return batch.point(0), infos[0]

    def transition_recursive(
        self,
        potential: Potential,
        point: PhasePoint,
        step_size: float,
        inv_mass: torch.Tensor,
        draws: TreeDraws | None = None,
    ) -> tuple[PhasePoint, TransitionInfo]:
        """The recursive tree (the reference the iterative one is tested against).
        Without ``draws`` random numbers are drawn one at a time as needed; with
        ``draws`` (one chain) they are read from its keyed blocks, as the iterative
        tree reads them."""
        p0 = sample_momentum(inv_mass) if draws is None else draws.momentum(inv_mass[None])[0]
        h0 = point.potential + kinetic(p0, inv_mass)
        tree = _Tree(point, p0, inv_mass * p0, 0.0, h0)
        sample, energy = point, h0
        depth = 0
        diverging = False
        sum_accept = 0.0
        num_steps = 0
        while depth < self.max_tree_depth:
            block = None if draws is None else draws.merges(depth)[0].tolist()
            u_dir = torch.rand(()).item() if draws is None else float(draws.directions(depth)[0])
            direction = 1 if u_dir < 0.5 else -1
            start, p_start = tree.edge(direction)
            sub = self._build(
                potential, start, p_start, direction, depth, step_size, inv_mass, h0, block, 0
            )
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
                _uniform(block, -1) < math.exp(sub.log_weight - tree.log_weight)
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
        chains, dim = state.q.shape
        if self.tree == "recursive" or (
            self.tree is None
            and (dim > ITERATIVE_MAX_DIM or (chains == 1 and not _compiled_tree_usable(potential)))
        ):
            from quivers.inference.nuts_batched import transition_batch

            return transition_batch(self, potential, state, step_sizes, inv_mass)
        from quivers.inference.nuts_iterative import transition_iterative

        return transition_iterative(self, potential, state, step_sizes, inv_mass)

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
        block: list[float] | None,
        offset: int,
    ) -> _Tree:
        """The subtree of 2**depth leaves from ``start``; its leaves are leaves
        ``offset`` ... of the doubling (``block``'s keys, see ``nuts_iterative``)."""
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
        half = 2 ** (depth - 1)
        first = self._build(
            potential, start, p, direction, depth - 1, step_size, inv_mass, h0, block, offset
        )
        if first.turning or first.diverging:
            return first
        edge, p_edge = first.edge(direction)
        second = self._build(
            potential,
            edge,
            p_edge,
            direction,
            depth - 1,
            step_size,
            inv_mass,
            h0,
            block,
            offset + half,
        )
        if second.turning or second.diverging:
            first.sum_accept += second.sum_accept
            first.num_steps += second.num_steps
            first.turning = second.turning
            first.diverging = second.diverging
            return first
        # uniform progressive sampling within a subtree
        total = _logaddexp(first.log_weight, second.log_weight)
        if _uniform(block, offset + half - 1) < math.exp(second.log_weight - total):
            first.proposal, first.energy = second.proposal, second.energy
        _merge(first, second, direction)
        return first
