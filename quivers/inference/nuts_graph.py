"""With ``compile=True``: a whole NUTS transition of C chains as one compiled graph.

The iterative tree of :mod:`quivers.inference.nuts_iterative`, traced whole: its two
loops, over the doublings of the trajectory and over the leaves of a doubling, are
``torch._higher_order_ops.while_loop`` s, whose conditions ("is any chain still
going?", "is the subtree complete?") TorchInductor's C++ wrapper evaluates itself.
The host calls one graph per transition, with the momenta and every doubling's
uniforms drawn beforehand (:func:`~quivers.inference.nuts_iterative.predraw`), and
reads one table of statistics back. Called per leaf or per chunk of leaves from
Python, the same graphs spent about a third of a batched step outside the compiled
code (the calls' wrappers, the host's loop, reading "still going" after each call).

Inside a doubling of 2**j leaves the leaves run in chunks of K (the kernel's
``leaves_per_call``; a chunk starts at a multiple of K), unrolled: the plans of a
chunk's first K - 1 leaves (levels merged, level stored, merge keys) do not depend
on where the chunk starts and are static (:func:`static_leaf`); the last leaf's is
computed in the graph from its index (:func:`leaf_plan_tensors`). Doublings of fewer
than K leaves are one chunk each, unrolled before the loop over doublings, each in a
loop that runs at most once (so that it is skipped when every chain has stopped).
A chain that stops inside a chunk goes on computing leaves nobody reads, as the
eager tree would skip them. It is the same Markov chain as the eager tree: the same
stream gives the same trees (``tests/inference/test_nuts_graph.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._higher_order_ops.while_loop import while_loop_op

from quivers.inference.compile import TracedOnce
from quivers.inference.nuts_iterative import (
    G,
    P,
    Q,
    accumulate,
    leaf_bookkeeping,
    rowdot,
    top_level_merge,
    trailing_ones,
)

GradAndValue = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def loop(
    cond: Callable[..., torch.Tensor],
    body: Callable[..., tuple[torch.Tensor, ...]],
    carried: tuple[torch.Tensor, ...],
    additional: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, ...]:
    """``while cond(*carried, *additional): carried = body(*carried, *additional)``, as
    torch's ``while_loop`` operator, called directly. ``torch.while_loop`` itself runs
    the call through dynamo (to find the tensors the functions close over), which
    under ``make_fx`` costs minutes once dynamo has compiled anything else in the
    process (its shapes then turn dynamic); so the functions close over no traced
    tensor, and everything they read is in ``carried`` or ``additional``. The model's
    own tensors, constants of the trace, are lifted out of the loops afterwards
    (:func:`~quivers.inference.compile.lift_constants`)."""
    return tuple(while_loop_op(cond, body, carried, additional))  # type: ignore[arg-type]


class Trajectory(NamedTuple):
    """What a transition keeps of its trajectory: the two ends (C, 4, D), summed
    momenta, log weight, proposal (position, gradient, potential, Hamiltonian) and
    which chains are still going."""

    left: torch.Tensor
    right: torch.Tensor
    rho: torch.Tensor
    log_weight: torch.Tensor
    zq: torch.Tensor
    zg: torch.Tensor
    zu: torch.Tensor
    zh: torch.Tensor
    active: torch.Tensor


class Stats(NamedTuple):
    """The transition's statistics per chain, and the leaves computed (1,)."""

    sum_accept: torch.Tensor
    num_steps: torch.Tensor
    diverging: torch.Tensor
    depth: torch.Tensor
    computed: torch.Tensor


def leaf_plan_tensors(
    n: torch.Tensor, last: torch.Tensor, levels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The plan of leaf ``n`` ((1,) int64) of the subtree whose last leaf is ``last``
    ((1,) int64), as tensors, for use inside a compiled graph: (halves merged (1,),
    levels merged (levels,), level stored at (levels,), the merges' keys (levels,)).
    What :func:`~quivers.inference.nuts_iterative._leaf_plan` computes on the host:
    level l merges when the l + 1 low bits of n are all ones, so the number merged is
    the number of trailing ones."""
    level = torch.arange(levels, device=n.device)
    span = torch.ones_like(level) << level  # 2**l
    merge_on = torch.remainder(n + 1, 2 * span) == 0
    merged = merge_on.sum().reshape(1)
    store_on = (level == merged) & (n != last)
    gaps = torch.where(merge_on, n - span, torch.zeros_like(span))
    return merged, merge_on, store_on, gaps


def static_leaf(
    leaf: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    inv_mass: torch.Tensor,
    h0: torch.Tensor,
    going: torch.Tensor,
    level_v: list[torch.Tensor],
    level_s: list[torch.Tensor],
    block: torch.Tensor,
    first: int | torch.Tensor,
    i: int,
    stores: bool,
    max_energy_error: float,
) -> tuple[torch.Tensor, ...]:
    """:func:`leaf_bookkeeping` of leaf ``first + i`` (``leaf``: its position,
    potential, gradient and momentum) when its plan is known when tracing: leaf
    ``first + i`` with ``first`` a multiple of a power of two above ``i`` merges
    trailing_ones(i) levels, and stores its tree at the next unless it is its
    subtree's last (not ``stores``). Only those levels are read and one is replaced in
    ``level_v`` / ``level_s`` (the checkpoints, one tensor per level), instead of the
    masked arithmetic over all levels that a plan known only at run time needs."""
    merged = trailing_ones(i)
    rows = level_v[0].shape[0]
    if merged:
        ckpt_v, ckpt_s = torch.stack(level_v[:merged], 1), torch.stack(level_s[:merged], 1)
    else:
        ckpt_v = level_v[0].new_zeros(rows, 0, *level_v[0].shape[1:])
        ckpt_s = level_s[0].new_zeros(rows, 0, *level_s[0].shape[1:])
    # keys first + i - 2**l from factories, not a tensor constant: a constant inside a
    # while_loop's body is one more input for the loop to thread through
    span = torch.ones(merged, dtype=torch.int64, device=block.device)
    keys = (first + i) - (span << torch.arange(merged, device=block.device))
    out = leaf_bookkeeping(
        *leaf,
        inv_mass,
        h0,
        going,
        ckpt_v,
        ckpt_s,
        block.index_select(1, keys),
        merged,
        torch.ones(merged, dtype=torch.bool, device=block.device),
        None,
        max_energy_error,
    )
    if stores:
        level_v[merged], level_s[merged] = out[1], out[2]
    return out


def leapfrog_leaf(
    grad_and_value: GradAndValue,
    end: torch.Tensor,
    steps: torch.Tensor,
    inv_mass: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One leapfrog step of every chain from its trajectory end ``end`` (C, 4, D):
    the new position, potential (C,) float64, inf where not finite, gradient (zero
    where not finite) and momentum."""
    half = 0.5 * steps
    q, g, p = end[:, Q], end[:, G], end[:, P]
    p_half = p - half * g
    q1 = q + steps * (inv_mass * p_half)
    g1, u1 = grad_and_value(q1)
    ok = torch.isfinite(g1).all(-1) & torch.isfinite(u1)
    u1 = torch.where(ok, u1.to(torch.float64), math.inf)
    g1 = torch.where(ok[:, None], g1, torch.zeros_like(g1))
    return q1, u1, g1, p_half - half * g1


def tree_chunk(
    grad_and_value: GradAndValue,
    levels: int,
    leaves: int,
    first: torch.Tensor | None,
    last: torch.Tensor,
    max_energy_error: float,
    end: torch.Tensor,
    steps: torch.Tensor,
    inv_mass: torch.Tensor,
    h0: torch.Tensor,
    going: torch.Tensor,
    ckpt_v: torch.Tensor,
    ckpt_s: torch.Tensor,
    block: torch.Tensor,
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """``leaves`` consecutive leaves of a subtree from leaf ``first`` ((1,) int64, a
    multiple of ``leaves``: the chunk's last leaf's plan is computed in the graph) or,
    with ``first`` None, the whole subtree (every plan static) of ``leaves`` leaves;
    ``last`` (1,) is the subtree's last leaf. Returns the chunk's last leaf's (end,
    subtree vectors, scalars, checkpoints, going) and the statistics ``stats``
    (summed acceptance, steps, diverging) brought up to date."""
    # the checkpoints as one tensor per level: a leaf with a static plan replaces
    # one level's entry instead of rewriting all of them
    level_v, level_s = list(ckpt_v.unbind(1)), list(ckpt_s.unbind(1))
    out: tuple[torch.Tensor, ...] = ()
    for i in range(leaves):
        leaf = leapfrog_leaf(grad_and_value, end, steps, inv_mass)
        if first is None or i < leaves - 1:
            out = static_leaf(
                leaf,
                inv_mass,
                h0,
                going,
                level_v,
                level_s,
                block,
                0 if first is None else first,
                i,
                first is not None or i < leaves - 1,  # the subtree's last stores nothing
                max_energy_error,
            )
        else:
            merged, merge_on, store_on, gaps = leaf_plan_tensors(first + i, last, levels)
            out = leaf_bookkeeping(
                *leaf,
                inv_mass,
                h0,
                going,
                torch.stack(level_v, 1),
                torch.stack(level_s, 1),
                block.index_select(1, gaps),
                merged,
                merge_on,
                store_on,
                max_energy_error,
            )
        stats = accumulate(going, out[6], out[7], *stats)
        end, going = out[0], out[5]
    if first is None:  # the last leaf's plan was static: its checkpoints are the lists
        out = (*out[:3], torch.stack(level_v, 1), torch.stack(level_s, 1), *out[5:])
    return (*out[:6], *stats)


def doubling(
    grad_and_value: GradAndValue,
    levels: int,
    chunk: int,
    max_energy_error: float,
    j: int | torch.Tensor,
    traj: Trajectory,
    stats: Stats,
    ckpt_v: torch.Tensor,
    ckpt_s: torch.Tensor,
    eps: torch.Tensor,
    inv_mass: torch.Tensor,
    h0: torch.Tensor,
    dirs: torch.Tensor,
    blocks: torch.Tensor,
) -> tuple[Trajectory, Stats, torch.Tensor, torch.Tensor]:
    """Doubling ``j`` (an int when it is one chunk of 2**j <= ``chunk`` leaves, else a
    (1,) int64 and its leaves run in a loop of chunks): a new subtree of 2**j leaves
    on the side ``dirs[j]`` chose, joined to the trajectory by
    :func:`top_level_merge`."""
    index = j if isinstance(j, torch.Tensor) else torch.full((1,), j, dtype=torch.int64)
    forward = dirs.index_select(0, index)[0] < 0.5
    block = blocks.index_select(0, index)[0]
    end = torch.where(forward[:, None, None], traj.right, traj.left)
    steps = torch.where(forward[:, None], eps, -eps)
    depth = stats.depth + traj.active.long()
    last = (torch.ones_like(index) << index) - 1
    counts = (stats.sum_accept, stats.num_steps, stats.diverging)
    if isinstance(j, int):
        out = tree_chunk(
            grad_and_value,
            levels,
            2**j,
            None,
            last,
            max_energy_error,
            end,
            steps,
            inv_mass,
            h0,
            traj.active,
            ckpt_v,
            ckpt_s,
            block,
            counts,
        )
        end, tree_v, tree_s, ckpt_v, ckpt_s, going = out[:6]
        counts, computed = (out[6], out[7], out[8]), stats.computed + 2**j
    else:

        def more(n: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            going, last = rest[5], rest[-1]
            return ((n <= last) & going.any()).all()  # a new 0-d tensor: a view would alias

        def chunk_of_leaves(n: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
            end, _, _, ckpt_v, ckpt_s, going, sum_accept, num_steps, diverging, computed = rest[:10]
            steps, inv_mass, h0, block, last = rest[10:]
            out = tree_chunk(
                grad_and_value,
                levels,
                chunk,
                n,
                last,
                max_energy_error,
                end,
                steps,
                inv_mass,
                h0,
                going,
                ckpt_v,
                ckpt_s,
                block,
                (sum_accept, num_steps, diverging),
            )
            return (n + chunk, *out, computed + chunk)

        start = (
            torch.zeros_like(index),
            end,
            # replaced by the first chunk, which always runs; fresh tensors, as the
            # loop's outputs will be (a clone of a slice keeps its strides)
            ckpt_v.new_zeros(ckpt_v[:, 0].shape),
            ckpt_s.new_zeros(ckpt_s[:, 0].shape),
            ckpt_v,
            ckpt_s,
            traj.active,
            *counts,
            stats.computed,
        )
        result = loop(more, chunk_of_leaves, start, (steps, inv_mass, h0, block, last))
        end, tree_v, tree_s, ckpt_v, ckpt_s, going = result[1:7]
        counts, computed = (result[7], result[8], result[9]), result[10]
    top = top_level_merge(
        going,
        forward,
        block.index_select(1, last)[:, 0],
        tree_v,
        tree_s,
        end,
        *traj[:-1],
    )
    return Trajectory(*top), Stats(*counts, depth, computed), ckpt_v, ckpt_s


def transition_graph(
    grad_and_value: GradAndValue,
    max_tree_depth: int,
    levels: int,
    chunk: int,
    max_energy_error: float,
) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The transition as a function of tensors: ``(q, grad, u0, p0, eps, inv_mass,
    dirs, blocks)`` (positions, gradients, potentials (C,) float64, momenta, signed
    step sizes (C, 1), inverse metrics, every doubling's direction uniforms (J, C) and
    merge uniforms (J, C, 2**levels)) to (zq, zu, zg, a (5, C) float64 table of mean
    acceptance, diverging, steps, depth and energy, the leaves computed (1,))."""
    unrolled = min(chunk.bit_length() - 1, max_tree_depth)  # doublings of < chunk leaves

    def step(
        traj: Trajectory,
        stats: Stats,
        ckpt_v: torch.Tensor,
        ckpt_s: torch.Tensor,
        j: int | torch.Tensor,
        consts: tuple[torch.Tensor, ...],
    ) -> Any:
        return doubling(
            grad_and_value,
            levels,
            chunk,
            max_energy_error,
            j,
            traj,
            stats,
            ckpt_v,
            ckpt_s,
            *consts,
        )

    def flat(
        traj: Trajectory, stats: Stats, ckpt_v: torch.Tensor, ckpt_s: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return (*traj, *stats, ckpt_v, ckpt_s)

    def unflat(
        carried: tuple[torch.Tensor, ...],
    ) -> tuple[Trajectory, Stats, torch.Tensor, torch.Tensor]:
        return Trajectory(*carried[:9]), Stats(*carried[9:14]), carried[14], carried[15]

    def transition(
        q: torch.Tensor,
        grad: torch.Tensor,
        u0: torch.Tensor,
        p0: torch.Tensor,
        eps: torch.Tensor,
        inv_mass: torch.Tensor,
        dirs: torch.Tensor,
        blocks: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        chains, dim = q.shape
        f64, i64 = torch.float64, torch.int64
        ps0 = inv_mass * p0
        h0 = u0 + 0.5 * rowdot(p0, ps0).to(f64)
        ends = torch.stack([q, grad, p0, ps0], 1)
        active = torch.ones(chains, dtype=torch.bool, device=q.device)
        traj = Trajectory(
            ends,
            ends.clone(),
            p0.clone(),
            torch.zeros_like(u0),
            q.clone(),
            grad.clone(),
            u0.clone(),
            h0.clone(),
            active,
        )
        counts = torch.zeros(chains, dtype=i64, device=q.device)
        stats = Stats(
            torch.zeros_like(u0),
            counts,
            torch.zeros_like(active),
            counts.clone(),
            torch.zeros(1, dtype=i64, device=q.device),
        )
        ckpt_v = q.new_zeros(chains, levels, 7, dim)
        ckpt_s = u0.new_zeros(chains, levels, 3)
        consts = (eps, inv_mass, h0, dirs, blocks)
        state = (traj, stats, ckpt_v, ckpt_s)
        for j in range(unrolled):
            if j == 0:  # every chain takes the first step
                state = step(*state, j, consts)
                continue

            def once(k: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
                return (rest[8].any() & (k == 0)).all()  # a new 0-d tensor: a view would alias

            def run(k: torch.Tensor, *rest: torch.Tensor, j: int = j) -> tuple[torch.Tensor, ...]:
                return (k + 1, *flat(*step(*unflat(rest[:16]), j, rest[16:])))

            zero = torch.zeros(1, dtype=i64, device=q.device)
            state = unflat(loop(once, run, (zero, *flat(*state)), consts)[1:])
        if max_tree_depth > unrolled:

            def more(j: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
                return (
                    rest[8].any() & (j < max_tree_depth)
                ).all()  # a new 0-d tensor: a view would alias

            def next_doubling(j: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return (j + 1, *flat(*step(*unflat(rest[:16]), j, rest[16:])))

            first = torch.full((1,), unrolled, dtype=i64, device=q.device)
            state = unflat(loop(more, next_doubling, (first, *flat(*state)), consts)[1:])
        traj, stats = state[0], state[1]
        table = torch.stack(
            [
                stats.sum_accept / stats.num_steps.clamp(min=1),
                stats.diverging.to(f64),
                stats.num_steps.to(f64),
                stats.depth.to(f64),
                traj.zh,
            ]
        )
        return traj.zq, traj.zu, traj.zg, table, stats.computed

    return transition


class CompiledTransition(TracedOnce):
    """:func:`transition_graph` of a potential, traced once and compiled (see the
    module docstring); ``data`` returns the record of the data the potential reads
    (the trace holds them as its constants: a new record means new data, and the
    graph is traced again). None from a call means compilation failed (warned once)
    and the caller runs the eager tree."""

    what = "the NUTS transition (its tree, sampling and U-turn checks)"

    def __init__(
        self,
        energy_fn: Callable[[torch.Tensor], torch.Tensor],
        max_tree_depth: int,
        levels: int,
        chunk: int,
        max_energy_error: float,
        data: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__()
        self.energy_fn = energy_fn
        self.max_tree_depth = max_tree_depth
        self.levels = levels
        self.chunk = chunk
        self.max_energy_error = max_energy_error
        self.data = data

    def baked(self) -> object:
        return self.data()

    def _make(self) -> Callable[..., Any]:
        grad_and_value = torch.func.vmap(
            torch.func.grad_and_value(self.energy_fn), randomness="error"
        )
        return transition_graph(
            grad_and_value, self.max_tree_depth, self.levels, self.chunk, self.max_energy_error
        )
