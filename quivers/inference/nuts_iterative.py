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

With ``compile=True`` K consecutive leaves of a subtree (each a leapfrog step of every
chain, its momentum half steps, position, potential and gradient, and the whole
bookkeeping of the leaf) are one compiled graph (:class:`CompiledTreeStep`),
K = min(2**j, ``NUTSKernel.leaves_per_call``) in doubling j, the plan of the chunk's
last leaf computed in the graph from its index (:func:`leaf_plan_tensors`; the others'
do not depend on it): calling a graph costs about as much as a leaf's arithmetic, so
running several per call is most of the speed. It is the same chain as one leaf per
call. The end of each doubling (:func:`top_level_merge`) is a compiled graph too.
Both are traced once and called without dynamo
(:class:`~quivers.inference.compile.TracedOnce`: dynamo's guards on the model and
the closure cost more than a leaf). When compilation fails the same bookkeeping runs
eagerly, leaf by leaf, after a :class:`~quivers.inference.compile.CompileFallbackWarning`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from quivers.inference.batched import BatchedPotential, BatchPoint, leapfrog_batch
from quivers.inference.compile import TracedOnce
from quivers.inference.kernel import TransitionInfo

if TYPE_CHECKING:
    from quivers.inference.nuts import NUTSKernel

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


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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
    return rho, ~(_rowdot(sharp, rhos) > 0.0).all(-1)


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
    kinetic = _rowdot(p1, ps1).to(torch.float64)
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
    turns = ~(_rowdot(sharp, rhos) > 0.0).all(-1)  # (C, levels)
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


class CompiledTopMerge(TracedOnce):
    """:func:`top_level_merge` as one compiled graph: eagerly it is about 35 small
    torch operations at every doubling of every transition. It reads nothing but its
    arguments."""

    what = "the NUTS tree's end-of-doubling merge (its sampling and U-turn checks)"

    def _make(self) -> Callable[..., Any]:
        return top_level_merge


def leaf_plan_tensors(
    n: torch.Tensor, last: torch.Tensor, levels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The plan of leaf ``n`` ((1,) int64) of the subtree whose last leaf is ``last``
    ((1,) int64), as tensors, for use inside a compiled graph: (halves merged (1,),
    levels merged (levels,), level stored at (levels,), the merges' keys (levels,)).
    What :func:`_leaf_plan` computes on the host: level l merges when the l + 1 low
    bits of n are all ones, so the number merged is the number of trailing ones."""
    level = torch.arange(levels, device=n.device)
    span = torch.ones_like(level) << level  # 2**l
    merge_on = torch.remainder(n + 1, 2 * span) == 0
    merged = merge_on.sum().reshape(1)
    store_on = (level == merged) & (n != last)
    gaps = torch.where(merge_on, n - span, torch.zeros_like(span))
    return merged, merge_on, store_on, gaps


def _static_leaf(
    q1: torch.Tensor,
    u1: torch.Tensor,
    g1: torch.Tensor,
    p1: torch.Tensor,
    inv_mass: torch.Tensor,
    h0: torch.Tensor,
    going: torch.Tensor,
    level_v: list[torch.Tensor],
    level_s: list[torch.Tensor],
    block: torch.Tensor,
    first: torch.Tensor,
    i: int,
    max_energy_error: float,
) -> tuple[torch.Tensor, ...]:
    """:func:`leaf_bookkeeping` of leaf ``first + i`` of a chunk, for every leaf but
    the chunk's last, whose plan does not depend on ``first``: a chunk of K leaves
    starts at a multiple of K and the subtree's last leaf is its last, so leaf
    ``first + i`` (i < K - 1) merges trailing_ones(i) levels and stores at the next.
    Only those levels are read and one is replaced in ``level_v`` / ``level_s`` (the
    checkpoints, one tensor per level), as the eager path does, instead of the
    masked arithmetic over all levels that a plan known only at run time needs.
    Returns what :func:`leaf_bookkeeping` does; the checkpoints are in the lists."""
    merged = trailing_ones(i)
    rows = level_v[0].shape[0]
    if merged:
        ckpt_v, ckpt_s = torch.stack(level_v[:merged], 1), torch.stack(level_s[:merged], 1)
    else:
        ckpt_v = level_v[0].new_zeros(rows, 0, *level_v[0].shape[1:])
        ckpt_s = level_s[0].new_zeros(rows, 0, *level_s[0].shape[1:])
    offsets = [i - 2**level for level in range(merged)]
    keys = first + torch.tensor(offsets, dtype=torch.int64, device=first.device)
    out = leaf_bookkeeping(
        q1,
        u1,
        g1,
        p1,
        inv_mass,
        h0,
        going,
        ckpt_v,
        ckpt_s,
        block.index_select(1, keys),
        merged,
        torch.ones(merged, dtype=torch.bool, device=first.device),
        None,
        max_energy_error,
    )
    level_v[merged], level_s[merged] = out[1], out[2]
    return out  # its checkpoints (entries 3 and 4) are the levels read, not all


class CompiledTreeStep(TracedOnce):
    """``leaves`` consecutive leaves of a subtree (each a leapfrog step of C chains
    and :func:`leaf_bookkeeping`), unrolled into one compiled graph of fixed shapes.
    Called with the chains' current ends (C, 4, D), signed step sizes (C, 1),
    inverse metrics (C, D), starting Hamiltonians (C,), going flags (C,),
    checkpoints, the doubling's merge uniforms padded to a fixed width (C, W), the
    chunk's first leaf and the subtree's last leaf as a (2,) int64, and the running
    statistics. The plans of the chunk's leaves but its last are known when tracing
    (:func:`_static_leaf`); the last leaf's is computed in the graph
    (:func:`leaf_plan_tensors`), so one graph serves every chunk and every doubling.
    Returns the last leaf's (end, subtree vectors, scalars, checkpoints, going) and
    the statistics, or None when compilation failed. A chain that stops inside the
    chunk goes on computing leaves nobody reads, as the host loop would. ``data``
    returns the record of the data the potential reads (the trace holds them as
    constants: a new record means new data, and the graph is traced again)."""

    def __init__(
        self,
        energy_fn: Callable[[torch.Tensor], torch.Tensor],
        levels: int,
        max_energy_error: float,
        leaves: int = 1,
        data: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__()
        self.energy_fn = energy_fn
        self.levels = levels
        self.max_energy_error = max_energy_error
        self.leaves = leaves
        self.data = data

    def baked(self) -> object:
        return self.data()

    def _make(self) -> Callable[..., Any]:
        grad_and_value = torch.func.vmap(
            torch.func.grad_and_value(self.energy_fn), randomness="error"
        )
        max_energy_error = self.max_energy_error
        levels, leaves = self.levels, self.leaves

        def step(
            end: torch.Tensor,
            steps: torch.Tensor,
            inv_mass: torch.Tensor,
            h0: torch.Tensor,
            going: torch.Tensor,
            ckpt_v: torch.Tensor,
            ckpt_s: torch.Tensor,
            block: torch.Tensor,
            where: torch.Tensor,
            sum_accept: torch.Tensor,
            num_steps: torch.Tensor,
            diverging: torch.Tensor,
        ) -> tuple[torch.Tensor, ...]:
            half = 0.5 * steps
            first, last = where[:1], where[1:]
            # the checkpoints as one tensor per level: a leaf with a static plan
            # replaces one level's entry instead of rewriting all of them
            level_v, level_s = list(ckpt_v.unbind(1)), list(ckpt_s.unbind(1))
            out: tuple[torch.Tensor, ...] = ()
            for i in range(leaves):
                q, g, p = end[:, Q], end[:, G], end[:, P]
                p_half = p - half * g
                q1 = q + steps * (inv_mass * p_half)
                g1, u1 = grad_and_value(q1)
                ok = torch.isfinite(g1).all(-1) & torch.isfinite(u1)
                u1 = torch.where(ok, u1.to(torch.float64), math.inf)
                g1 = torch.where(ok[:, None], g1, torch.zeros_like(g1))
                p1 = p_half - half * g1
                if i < leaves - 1:
                    out = _static_leaf(
                        q1,
                        u1,
                        g1,
                        p1,
                        inv_mass,
                        h0,
                        going,
                        level_v,
                        level_s,
                        block,
                        first,
                        i,
                        max_energy_error,
                    )
                else:
                    ckpt_v, ckpt_s = torch.stack(level_v, 1), torch.stack(level_s, 1)
                    merged, merge_on, store_on, gaps = leaf_plan_tensors(first + i, last, levels)
                    out = leaf_bookkeeping(
                        q1,
                        u1,
                        g1,
                        p1,
                        inv_mass,
                        h0,
                        going,
                        ckpt_v,
                        ckpt_s,
                        block.index_select(1, gaps),
                        merged,
                        merge_on,
                        store_on,
                        max_energy_error,
                    )
                sum_accept, num_steps, diverging = _accumulate(
                    going, out[6], out[7], sum_accept, num_steps, diverging
                )
                end, going = out[0], out[5]
            return (*out[:6], sum_accept, num_steps, diverging)

        return step


class CompiledTree:
    """The run's compiled tree steps: one :class:`CompiledTreeStep` per chunk size
    asked for (1, 2, 4, ... up to the kernel's ``leaves_per_call``), each compiled on
    its first use. Once one of them failed to compile (warned once) the tree runs
    eagerly."""

    def __init__(
        self,
        energy_fn: Callable[[torch.Tensor], torch.Tensor],
        levels: int,
        max_energy_error: float,
        data: Callable[[], object] = lambda: None,
    ) -> None:
        self.energy_fn = energy_fn
        self.levels = levels
        self.max_energy_error = max_energy_error
        self.data = data
        self.steps: dict[int, CompiledTreeStep] = {}
        self.top = CompiledTopMerge()

    @property
    def error(self) -> str | None:
        """Why compiling failed, once a step's compilation has."""
        return next((s.error for s in self.steps.values() if s.error is not None), None)

    def step(self, leaves: int) -> CompiledTreeStep:
        """The graph of ``leaves`` leaves (made on first request)."""
        step = self.steps.get(leaves)
        if step is None:
            step = CompiledTreeStep(
                self.energy_fn, self.levels, self.max_energy_error, leaves, self.data
            )
            self.steps[leaves] = step
        return step


def _accumulate(
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


def _compiled_tree(kernel: NUTSKernel, potential: BatchedPotential) -> CompiledTree | None:
    """The run's compiled tree steps (made once per potential), or None when not
    compiling or after compilation failed."""
    if getattr(potential.potential, "compiled", None) is None or not potential.vectorize:
        return None
    levels = _levels(kernel.max_tree_depth)
    tree = potential.tree_step
    if tree is None or tree.levels != levels or tree.max_energy_error != kernel.max_energy_error:
        energy = potential.potential
        tree = CompiledTree(energy, levels, kernel.max_energy_error, lambda: energy.validated)
        potential.tree_step = tree
    return None if tree.error is not None else tree


@functools.lru_cache(maxsize=4096)
def _where(n: int, last: int, device: torch.device) -> torch.Tensor:
    """A chunk's first leaf and its subtree's last as one (2,) int64 tensor (one
    input: two cached tensors could be the same object, and a traced graph is specific
    to which of its arguments are one tensor, so that would be another graph).
    Cached: never mutated."""
    return torch.tensor([n, last], device=device)


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
    compiled = _compiled_tree(kernel, potential)

    p0 = draws.momentum(inv_mass)
    ps0 = inv_mass * p0
    u0 = torch.tensor(state.potential, dtype=f64, device=device)
    h0 = u0 + 0.5 * _rowdot(p0, ps0).to(f64)
    eps = torch.tensor(step_sizes, dtype=dtype, device=device).unsqueeze(-1)
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
        forward = draws.directions(j) < 0.5
        forward_list = forward.tolist()
        block = draws.merges(j)
        fwd = forward[:, None, None]
        end = torch.where(fwd, right, left)
        steps = torch.where(forward[:, None], eps, -eps)
        depth = depth + active.long()
        going = active
        tree_v, tree_s = ckpt_v[:, 0], ckpt_s[:, 0]
        leaves = 2**j
        chunk = min(leaves, kernel.leaves_per_call)  # a power of two: divides 2**j
        padded = None
        n = 0
        while n < leaves:
            if n > 0 and not any(going_list):
                break
            out = None
            if compiled is not None and compiled.error is None and potential.potential.checked:
                if padded is None:  # the block at one width for every doubling
                    padded = torch.nn.functional.pad(block, (0, 2**levels - leaves))
                with potential.potential.trusted():
                    out = compiled.step(chunk)(
                        end,
                        steps,
                        inv_mass,
                        h0,
                        going,
                        ckpt_v,
                        ckpt_s,
                        padded,
                        _where(n, leaves - 1, device),
                        sum_accept,
                        num_steps,
                        diverging,
                    )
                if out is not None:
                    potential.num_calls += chunk
                    potential.potential.num_evals += chains * chunk
                    end, tree_v, tree_s, ckpt_v, ckpt_s, going = out[:6]
                    sum_accept, num_steps, diverging = out[6:]
                    going_list = going.tolist()  # per chain: the eager path skips rows
                    n += chunk
                    continue
            # eagerly, leaf by leaf (not compiling, or compilation failed)
            for leaf in range(n, n + chunk):
                if leaf > n and not any(going_list):
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
                stats = _accumulate(
                    going, bookkept[6], bookkept[7], sum_accept, num_steps, diverging
                )
                end, tree_v, tree_s, ckpt_v, ckpt_s, going = bookkept[:6]
                sum_accept, num_steps, diverging = stats
                going_list = going.tolist()
            n += chunk
        trajectory = (left, right, rho, log_weight, zq, zg, zu, zh)
        # the top merge's uniforms contiguous: one graph for every doubling's width
        args = (going, forward, block[:, -1].contiguous(), tree_v, tree_s, end, *trajectory)
        top = None if compiled is None else compiled.top(*args)
        left, right, rho, log_weight, zq, zg, zu, zh, active = (
            top if top is not None else top_level_merge(*args)
        )
        going_list = active.tolist()
    table: list[list[float]] = torch.stack(
        [
            sum_accept / num_steps.clamp(min=1),
            diverging.to(f64),
            num_steps.to(f64),
            depth.to(f64),
            zh,
        ]
    ).tolist()
    infos = [
        TransitionInfo(
            table[0][c], bool(table[1][c]), int(table[2][c]), int(table[3][c]), table[4][c]
        )
        for c in range(chains)
    ]
    return BatchPoint(zq, zu.tolist(), zg), infos
