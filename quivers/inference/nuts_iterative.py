"""Multinomial NUTS as an iterative tree on flat tensors, for C chains at once.

The same Markov kernel as the recursive tree of :mod:`quivers.inference.nuts`, built
the way NumPyro's iterative NUTS builds it (Phan, Pradhan & Jankowiak, 2019,
"Composable Effects for Flexible and Accelerated Probabilistic Programming in
NumPyro", section 3.1; BlackJAX's ``iterative_nuts`` is the same design): a subtree
of 2**j leapfrog steps is grown one leaf at a time, and instead of a recursion each
level l keeps a *checkpoint*, the finished left-in-build-order half of the level-l
subtree still waiting for its partner. After leaf n of the subtree the number of
halves that complete is the number of trailing one bits of n (a binary counter's
carries): the leaf is merged with the checkpoints of levels 0, 1, ... in turn, each
merge with the U-turn checks and the uniform progressive choice of the proposal,
and the result is stored at the first level whose bit of n is 0. All of it is tensor
arithmetic over the (C, levels, 7, D) checkpoints, masked per chain: a chain whose
subtree turned or diverged stops (its later leaves are computed but never read), and
the host asks one question per leapfrog step, "is any chain still going?". The
doubling ends with the biased progressive choice and the U-turn checks across the
whole trajectory. ``docs/dev/inference.md`` ("The iterative tree") has a diagram.

Random numbers (:class:`TreeDraws`) are keyed so that this kernel and the recursive
one can consume the same stream: each doubling j draws one direction per chain and a
block of 2**j uniforms; the merge of the two halves of the node covering leaves
[a, a + 2**d) uses entry ``a + 2**(d-1) - 1`` (its in-order index, unique among the
2**j - 1 inner nodes) and the top-level merge entry ``2**j - 1``.

Random numbers are drawn before the transition starts (:func:`predraw`), all
doublings' at once. With ``compile=True`` the whole transition is one compiled graph
(:mod:`quivers.inference.nuts_graph`), the same arithmetic in ``while_loop`` s; when
compilation fails the same bookkeeping runs here, eagerly, leaf by leaf, after a
:class:`~quivers.inference.compile.CompileFallbackWarning`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from quivers.inference.batched import BatchedPotential, BatchPoint, leapfrog_batch
from quivers.inference.kernel import TransitionInfo

if TYPE_CHECKING:
    from quivers.inference.nuts import NUTSKernel
    from quivers.inference.nuts_graph import CompiledTransition

# a subtree half, in build order ("a" its first leaf, "b" its last): sharp momentum
# and momentum at both ends, summed momenta, and its proposal (position, gradient)
PS_A, P_A, PS_B, P_B, RHO, ZQ, ZG = range(7)
# its scalars (float64): log weight, proposal's potential and Hamiltonian
LW, ZU, ZH = range(3)
# a trajectory end: position, gradient, momentum, sharp momentum
Q, G, P, PS = range(4)


class TreeDraws(Protocol):
    """The random numbers of one transition: the momenta, then per doubling the
    directions and the merges' uniforms, keyed (see the module docstring)."""

    def momentum(self, inv_mass: torch.Tensor) -> torch.Tensor:
        """(C, D) momenta ~ Normal(0, M) for inverse metrics ``inv_mass`` (C, D)."""
        ...

    def directions(self, depth: int) -> torch.Tensor:
        """(C,) uniforms: doubling ``depth`` goes forward where the value is < 0.5."""
        ...

    def merges(self, depth: int) -> torch.Tensor:
        """(C, 2**depth) uniforms for the merges of doubling ``depth``."""
        ...


class TorchDraws:
    """:class:`TreeDraws` from torch's global generator, drawn as asked for."""

    def __init__(self, chains: int, device: torch.device) -> None:
        self.chains = chains
        self.device = device

    def momentum(self, inv_mass: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(inv_mass) / inv_mass.sqrt()

    def directions(self, depth: int) -> torch.Tensor:
        return torch.rand(self.chains, dtype=torch.float64, device=self.device)

    def merges(self, depth: int) -> torch.Tensor:
        return torch.rand(self.chains, 2**depth, dtype=torch.float64, device=self.device)


def rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _turning(first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed momenta, turned) of the merge of two adjacent halves (C, >=5, D), in
    build order: the generalised no-U-turn criterion on the whole and the two checks
    across the join (Stan >= 2.26), as one reduction. The criterion is symmetric in
    the two ends, so build order serves for either direction."""
    rho = first[:, RHO] + second[:, RHO]
    rho_a = first[:, RHO] + second[:, P_A]  # first half plus the second's first point
    rho_b = second[:, RHO] + first[:, P_B]  # second half plus the first's last point
    sharp = torch.stack(
        [
            first[:, PS_A],
            second[:, PS_B],
            first[:, PS_A],
            second[:, PS_A],
            first[:, PS_B],
            second[:, PS_B],
        ],
        1,
    )
    rhos = torch.stack([rho, rho, rho_a, rho_a, rho_b, rho_b], 1)
    return rho, ~(rowdot(sharp, rhos) > 0.0).all(-1)


def _at(x: torch.Tensor, level: int | torch.Tensor) -> torch.Tensor:
    """Entry ``level`` of dimension 1 (a host int eagerly, a (1,) index compiled)."""
    if isinstance(level, int):
        return x[:, level]
    return x.index_select(1, level).squeeze(1)


def leaf_bookkeeping(
    q1: torch.Tensor,
    u1: torch.Tensor,
    g1: torch.Tensor,
    p1: torch.Tensor,
    inv_mass: torch.Tensor,
    h0: torch.Tensor,
    active: torch.Tensor,
    ckpt_v: torch.Tensor,
    ckpt_s: torch.Tensor,
    u_merge: torch.Tensor,
    merged: int | torch.Tensor,
    merge_on: torch.Tensor,
    store: int | torch.Tensor | None,
    max_energy_error: float,
) -> tuple[torch.Tensor, ...]:
    """Everything a new leaf (position ``q1``, potential ``u1`` (C,) float64, inf where
    not finite, gradient ``g1``, momentum ``p1``) does to the subtree of each chain.

    The leaf is scored against the starting Hamiltonians ``h0`` (divergence, the
    acceptance statistic, log weight -(H - H0)), then merged with the checkpoints of
    levels 0 .. ``merged`` - 1 (``merge_on`` (levels,) marks them) with the uniforms
    ``u_merge`` (C, levels), and the result stored at level ``store`` (None: the
    subtree is complete; a (levels,) mask under compilation).

    The ``merged`` merges form a chain (the leaf, then level 0's half before it, then
    level 1's, ...), computed for every level at once: the second half at level l is
    the leaf merged with levels < l, so its summed momenta are a cumulative sum over
    levels, its log weight a cumulative log-sum-exp, its first point level l-1's; the
    six U-turn dot products of every level are one reduction; and the proposal is the
    last level whose uniform chose the earlier half (the leaf's if none did). Returns
    (end (C, 4, D), subtree vectors (C, 7, D) and scalars (C, 3), checkpoints, still
    going (C,), diverged (C,), acceptance statistic (C,)); rows not ``active`` are
    meaningless.
    """
    ps1 = inv_mass * p1
    kinetic = rowdot(p1, ps1).to(torch.float64)
    inf = torch.full_like(u1, math.inf)
    h = torch.where(torch.isfinite(u1), u1 + 0.5 * kinetic, inf)
    delta = h - h0
    delta = torch.where(torch.isnan(delta), inf, delta)
    diverged = delta > max_energy_error
    accept = torch.where(
        diverged,
        torch.zeros_like(delta),
        torch.where(delta > 0.0, torch.exp(-delta), torch.ones_like(delta)),
    )
    log_weight = torch.where(diverged, -inf, -delta)
    full_v, full_s = ckpt_v, ckpt_s
    if isinstance(merged, int):  # eager: only the levels that merge
        ckpt_v, ckpt_s = ckpt_v[:, :merged], ckpt_s[:, :merged]
        u_merge, merge_on = u_merge[:, :merged], merge_on[:merged]
    levels = ckpt_v.shape[1]
    # second halves T_l (l = 0 .. levels): entry l is the leaf merged with levels < l
    rho = torch.cumsum(torch.cat([p1.unsqueeze(1), ckpt_v[:, :, RHO]], 1), 1)
    first_ps = torch.cat([ps1.unsqueeze(1), ckpt_v[:, :, PS_A]], 1)
    first_p = torch.cat([p1.unsqueeze(1), ckpt_v[:, :, P_A]], 1)
    lw = torch.logcumsumexp(torch.cat([log_weight.unsqueeze(1), ckpt_s[:, :, LW]], 1), 1)
    # the merge at level l: the checkpoint (first in build order) and T_l
    rho_a = ckpt_v[:, :, RHO] + first_p[:, :levels]
    rho_b = rho[:, :levels] + ckpt_v[:, :, P_B]
    leaf_ps = ps1.unsqueeze(1).expand(-1, levels, -1)
    sharp = torch.stack(
        [
            ckpt_v[:, :, PS_A],
            leaf_ps,
            ckpt_v[:, :, PS_A],
            first_ps[:, :levels],
            ckpt_v[:, :, PS_B],
            leaf_ps,
        ],
        2,
    )
    whole = rho[:, 1:]
    rhos = torch.stack([whole, whole, rho_a, rho_a, rho_b, rho_b], 2)
    turns = ~(rowdot(sharp, rhos) > 0.0).all(-1)  # (C, levels)
    turned = (turns & merge_on).any(-1)
    # uniform progressive sampling: level l keeps T_l's proposal when its uniform is
    # below T_l's share of the merged weight
    keep_second = u_merge < torch.exp(lw[:, :levels] - lw[:, 1:])
    chose_first = merge_on & ~keep_second
    rank = torch.arange(levels + 1, device=p1.device)  # 0: the leaf, l + 1: level l
    leaf = torch.ones(p1.shape[0], 1, dtype=torch.bool, device=p1.device)
    chose = torch.cat([leaf, chose_first], 1)
    source = torch.where(chose, rank, torch.zeros_like(rank)).amax(-1)
    rows = torch.arange(p1.shape[0], device=p1.device)
    cand_v = torch.cat([torch.stack([q1, g1], 1).unsqueeze(1), ckpt_v[:, :, ZQ:]], 1)
    cand_s = torch.cat([torch.stack([u1, h], 1).unsqueeze(1), ckpt_s[:, :, ZU:]], 1)
    tree_v = torch.cat(
        [
            torch.stack(
                [_at(first_ps, merged), _at(first_p, merged), ps1, p1, _at(rho, merged)], 1
            ),
            cand_v[rows, source],
        ],
        1,
    )
    tree_s = torch.cat([_at(lw, merged).unsqueeze(1), cand_s[rows, source]], 1)
    ckpt_v, ckpt_s = full_v, full_s
    if isinstance(store, int):  # eager: in place (the caller owns the checkpoints)
        ckpt_v[:, store] = tree_v
        ckpt_s[:, store] = tree_s
    elif store is not None:
        ckpt_v = torch.where(store[None, :, None, None], tree_v.unsqueeze(1), ckpt_v)
        ckpt_s = torch.where(store[None, :, None], tree_s.unsqueeze(1), ckpt_s)
    end = torch.stack([q1, g1, p1, ps1], 1)
    going = active & ~diverged & ~turned
    return end, tree_v, tree_s, ckpt_v, ckpt_s, going, active & diverged, accept


def top_level_merge(
    ok: torch.Tensor,
    forward: torch.Tensor,
    u_top: torch.Tensor,
    tree_v: torch.Tensor,
    tree_s: torch.Tensor,
    end: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    rho: torch.Tensor,
    log_weight: torch.Tensor,
    zq: torch.Tensor,
    zg: torch.Tensor,
    zu: torch.Tensor,
    zh: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The end of a doubling: the new subtree (vectors ``tree_v``, scalars ``tree_s``,
    last leaf ``end``) of the chains ``ok`` (those whose subtree neither turned nor
    diverged) joins the trajectory (its ends ``left`` / ``right`` (C, 4, D), summed
    momenta ``rho``, log weight and proposal ``zq``, ``zg``, ``zu``, ``zh``) on the
    ``forward`` side, with biased progressive sampling towards the new subtree
    (Betancourt 2017, A.3.2, with the uniforms ``u_top``), then the U-turn checks
    across the whole trajectory. Returns the new (left, right, rho, log weight, zq,
    zg, zu, zh, still going); the rows of other chains are left as they were."""
    sub_lw = tree_s[:, LW]
    take = ok & ((sub_lw > log_weight) | (u_top < torch.exp(sub_lw - log_weight)))
    zq = torch.where(take[:, None], tree_v[:, ZQ], zq)
    zg = torch.where(take[:, None], tree_v[:, ZG], zg)
    zu = torch.where(take, tree_s[:, ZU], zu)
    zh = torch.where(take, tree_s[:, ZH], zh)
    fwd = forward[:, None, None]
    near = torch.where(fwd, right, left)
    far = torch.where(fwd, left, right)
    whole = torch.stack([far[:, PS], far[:, P], near[:, PS], near[:, P], rho], 1)
    merged_rho, turned = _turning(whole, tree_v)
    rho = torch.where(ok[:, None], merged_rho, rho)
    log_weight = torch.where(ok, torch.logaddexp(log_weight, sub_lw), log_weight)
    right = torch.where((ok & forward)[:, None, None], end, right)
    left = torch.where((ok & ~forward)[:, None, None], end, left)
    return left, right, rho, log_weight, zq, zg, zu, zh, ok & ~turned


def accumulate(
    active: torch.Tensor,
    diverged: torch.Tensor,
    accept: torch.Tensor,
    sum_accept: torch.Tensor,
    num_steps: torch.Tensor,
    diverging: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The transition's statistics after one more leaf of the ``active`` chains."""
    return (
        sum_accept + torch.where(active, accept, torch.zeros_like(accept)),
        num_steps + active.long(),
        diverging | diverged,
    )


def trailing_ones(n: int) -> int:
    """How many halves complete at leaf ``n`` of a subtree (0-based)."""
    count = 0
    while n & 1:
        count += 1
        n >>= 1
    return count


@dataclass(frozen=True)
class _LeafPlan:
    """What leaf n of a subtree does, as host ints and as (cached) tensors."""

    merged: int  # halves completed at this leaf
    store: int | None  # the level its tree is kept at (None: the subtree's last leaf)
    gaps: torch.Tensor  # (levels,) the merges' keys in the doubling's block
    merge_on: torch.Tensor  # (levels,) levels merged


@functools.lru_cache(maxsize=4096)
def _leaf_plan(n: int, last: bool, levels: int, device: torch.device) -> _LeafPlan:
    """The plan of leaf ``n`` (``last``: of its subtree, whose tree goes to the top
    level instead of a checkpoint). Cached: never mutated."""
    merged = trailing_ones(n)
    store = None if last else merged
    return _LeafPlan(
        merged,
        store,
        torch.tensor(
            [n - 2**level if level < merged else 0 for level in range(levels)], device=device
        ),
        torch.tensor([level < merged for level in range(levels)], device=device),
    )


def _compiled_transition(
    kernel: NUTSKernel, potential: BatchedPotential
) -> CompiledTransition | None:
    """The run's compiled transition for this kernel's tree settings (made once per
    potential and settings), or None when not compiling or after compilation failed."""
    if getattr(potential.potential, "compiled", None) is None or not potential.vectorize:
        return None
    from quivers.inference.nuts_graph import CompiledTransition

    key = (kernel.max_tree_depth, kernel.leaves_per_call, kernel.max_energy_error)
    graph = potential.transition_graphs.get(key)
    if graph is None:
        energy = potential.potential
        graph = CompiledTransition(
            energy,
            kernel.max_tree_depth,
            _levels(kernel.max_tree_depth),
            kernel.leaves_per_call,
            kernel.max_energy_error,
            lambda: energy.validated,
        )
        potential.transition_graphs[key] = graph
    return None if graph.error is not None else graph


def predraw(
    draws: TreeDraws, inv_mass: torch.Tensor, max_tree_depth: int, levels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A transition's random numbers, all drawn before it starts: the momenta, then
    per doubling its directions and its merge uniforms (in the order a tree that
    drew them as it went would, so that the doublings it ran see the same numbers),
    as (momenta (C, D), directions (J, C), merge uniforms (J, C, 2**levels), each
    doubling's block padded with zeros)."""
    p0 = draws.momentum(inv_mass)
    dirs, blocks = [], []
    for j in range(max_tree_depth):
        dirs.append(draws.directions(j))
        blocks.append(torch.nn.functional.pad(draws.merges(j), (0, 2**levels - 2**j)))
    return p0, torch.stack(dirs), torch.stack(blocks)


def _levels(max_tree_depth: int) -> int:
    # doubling j < max_tree_depth merges and stores at levels < j
    return max(max_tree_depth - 1, 1)


def transition_iterative(
    kernel: NUTSKernel,
    potential: BatchedPotential,
    state: BatchPoint,
    step_sizes: list[float],
    inv_mass: torch.Tensor,
    draws: TreeDraws | None = None,
) -> tuple[BatchPoint, list[TransitionInfo]]:
    """One NUTS transition of every chain in ``state`` (see the module docstring)."""
    chains, dim = state.q.shape
    device, dtype = state.q.device, state.q.dtype
    f64 = torch.float64
    levels = _levels(kernel.max_tree_depth)
    draws = draws if draws is not None else TorchDraws(chains, device)
    p0, dirs, blocks = predraw(draws, inv_mass, kernel.max_tree_depth, levels)
    u0 = torch.tensor(state.potential, dtype=f64, device=device)
    eps = torch.tensor(step_sizes, dtype=dtype, device=device).unsqueeze(-1)
    graph = _compiled_transition(kernel, potential)
    if graph is not None and potential.potential.checked:
        with potential.potential.trusted():
            out = graph(state.q, state.grad, u0, p0, eps, inv_mass, dirs, blocks)
        if out is not None:
            zq, zu, zg, table, computed = out
            leaves = int(computed)
            potential.num_calls += leaves
            potential.potential.num_evals += chains * leaves
            return _result(zq, zu, zg, table)
    ps0 = inv_mass * p0
    h0 = u0 + 0.5 * rowdot(p0, ps0).to(f64)
    # the trajectory: its two ends, summed momenta, log weight and proposal
    left = right = torch.stack([state.q, state.grad, p0, ps0], 1)
    rho = p0
    log_weight = torch.zeros(chains, dtype=f64, device=device)
    zq, zg, zu, zh = state.q, state.grad, u0, h0
    ckpt_v = torch.zeros(chains, levels, 7, dim, dtype=dtype, device=device)
    ckpt_s = torch.zeros(chains, levels, 3, dtype=f64, device=device)
    active = torch.ones(chains, dtype=torch.bool, device=device)
    diverging = torch.zeros_like(active)
    depth = torch.zeros(chains, dtype=torch.int64, device=device)
    num_steps = torch.zeros_like(depth)
    sum_accept = torch.zeros(chains, dtype=f64, device=device)
    going_list = [True] * chains
    for j in range(kernel.max_tree_depth):
        if j > 0 and not any(going_list):
            break
        forward = dirs[j] < 0.5
        forward_list = forward.tolist()
        leaves = 2**j
        block = blocks[j, :, :leaves]
        end = torch.where(forward[:, None, None], right, left)
        depth = depth + active.long()
        going = active
        tree_v, tree_s = ckpt_v[:, 0], ckpt_s[:, 0]
        for leaf in range(leaves):
            if leaf > 0 and not any(going_list):
                break
            plan = _leaf_plan(leaf, leaf == leaves - 1, levels, device)
            q1, energy, g1, p1 = leapfrog_batch(
                potential,
                end[:, Q],
                end[:, G],
                end[:, P],
                [s if f else -s for s, f in zip(step_sizes, forward_list, strict=True)],
                inv_mass,
                going_list,
            )
            bookkept = leaf_bookkeeping(
                q1,
                torch.tensor(energy, dtype=f64, device=device),
                g1,
                p1,
                inv_mass,
                h0,
                going,
                ckpt_v,
                ckpt_s,
                block.index_select(1, plan.gaps),
                plan.merged,
                plan.merge_on,
                plan.store,
                kernel.max_energy_error,
            )
            stats = accumulate(going, bookkept[6], bookkept[7], sum_accept, num_steps, diverging)
            end, tree_v, tree_s, ckpt_v, ckpt_s, going = bookkept[:6]
            sum_accept, num_steps, diverging = stats
            going_list = going.tolist()
        trajectory = (left, right, rho, log_weight, zq, zg, zu, zh)
        left, right, rho, log_weight, zq, zg, zu, zh, active = top_level_merge(
            going, forward, block[:, -1], tree_v, tree_s, end, *trajectory
        )
        going_list = active.tolist()
    table = torch.stack(
        [
            sum_accept / num_steps.clamp(min=1),
            diverging.to(f64),
            num_steps.to(f64),
            depth.to(f64),
            zh,
        ]
    )
    return _result(zq, zu, zg, table)


def _result(
    zq: torch.Tensor, zu: torch.Tensor, zg: torch.Tensor, table: torch.Tensor
) -> tuple[BatchPoint, list[TransitionInfo]]:
    """The transition's new states and per-chain statistics from its proposals and
    its (5, C) table of mean acceptance, diverging, steps, depth and energy."""
    rows: list[list[float]] = table.tolist()
    infos = [
        TransitionInfo(rows[0][c], bool(rows[1][c]), int(rows[2][c]), int(rows[3][c]), rows[4][c])
        for c in range(zq.shape[0])
    ]
    return BatchPoint(zq, zu.tolist(), zg), infos
