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
import warnings

import pytest
import torch
from inference_models import EightSchools, NealsFunnel, correlated_100d, eight_schools_data

from quivers.inference import CompileFallbackWarning, NUTSKernel
from quivers.inference.batched import BatchedPotential, BatchPoint
from quivers.inference.integrator import PhasePoint
from quivers.inference.nuts import LEAVES_PER_CALL
from quivers.inference.nuts_graph import CompiledTransition, leaf_plan_tensors
from quivers.inference.nuts_iterative import _leaf_plan, trailing_ones, transition_iterative
from quivers.inference.potential import Potential

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


# ------------------------------------------- compile=True: the transition as one graph
#
# With ``compile=True`` a whole transition is one compiled graph (``nuts_graph``):
# loops over doublings and over chunks of up to ``leaves_per_call`` leaves, each
# chunk's last leaf's plan (levels merged, level stored, merge keys) computed in the
# graph from its index. It must be the same Markov chain as the eager tree: the same
# keyed stream gives the same trees, and the same draws to float rounding (compiled
# and eager values differ in the last bits; rel 1e-5 allows for it).


def test_the_in_graph_leaf_plan_is_the_host_plan():
    for levels in (1, 3, 6):
        for j in range(levels + 1):
            last = torch.tensor([2**j - 1])
            for n in range(2**j):
                host = _leaf_plan(n, n == 2**j - 1, levels, torch.device("cpu"))
                merged, merge_on, store_on, gaps = leaf_plan_tensors(
                    torch.tensor([n]), last, levels
                )
                stored = [level == host.store for level in range(levels)]
                assert int(merged) == host.merged == trailing_ones(n), (levels, n)
                assert torch.equal(merge_on, host.merge_on), (levels, n)
                assert store_on.tolist() == stored, (levels, n)
                assert torch.equal(gaps, host.gaps), (levels, n)


def _compiled_potential(model, x, obs):
    with torch.no_grad():
        trace = model.trace(x, obs)
    return Potential(model, x, obs, trace, compile=True)


def _eager_potential(model, x, obs):
    with torch.no_grad():
        trace = model.trace(x, obs)
    return Potential(model, x, obs, trace)


def _chunk_targets():
    x, obs = eight_schools_data()
    return {
        "correlated": (correlated_100d(dim=6), None, {}, 0.4),
        "funnel": (NealsFunnel(5), None, {}, 0.8),  # diverges in the neck
        "eight_schools": (EightSchools(centred=True), x, obs, 0.5),
    }


class DecisiveDraws(KeyedDraws):
    """A keyed stream whose end-of-doubling uniforms (each block's last entry) are
    near 0 or 1, chain by chain: reading any other entry for that merge (a padded
    zero, another node's uniform) changes which subtree's proposal a chain keeps."""

    def merges(self, depth: int) -> torch.Tensor:
        u = super().merges(depth).clone()
        u[:, -1] = torch.tensor([1e-6, 1 - 1e-6] * self.chains, dtype=F64)[: u.shape[0]]
        return u


def _same_transitions(first, second, chains, step, transitions, seed=0, rel=1e-6, draws=KeyedDraws):
    """Run both (BatchedPotential, kernel) pairs from the same states with the same
    keyed stream at every transition; assert the same trees and the same draws to
    ``rel``. Returns the (depth, steps, diverging) seen."""
    (bp1, k1), (bp2, k2) = first, second
    potential = bp1.potential
    dim = potential.dim
    g = torch.Generator().manual_seed(seed)
    starts = torch.randn(chains, dim, generator=g) * 0.5
    points = [PhasePoint(q, *potential.value_and_grad(q)) for q in starts]
    steps = [step * (1.0 + 0.2 * c) for c in range(chains)]
    inv_mass = torch.ones(chains, dim) + 0.2 * torch.arange(chains)[:, None]
    state = BatchPoint.stack(points)
    seen = []
    for t in range(transitions):
        a, infos_a = transition_iterative(
            k1, bp1, state, steps, inv_mass, draws(seed + t, chains, dim)
        )
        b, infos_b = transition_iterative(
            k2, bp2, state, steps, inv_mass, draws(seed + t, chains, dim)
        )
        for c, (x, y) in enumerate(zip(infos_a, infos_b, strict=True)):
            where = f"transition {t}, chain {c}"
            assert (x.tree_depth, x.num_steps, x.diverging) == (
                y.tree_depth,
                y.num_steps,
                y.diverging,
            ), where
            assert x.accept_stat == pytest.approx(y.accept_stat, rel=rel, abs=1e-9), where
            assert x.energy == pytest.approx(y.energy, rel=rel, abs=1e-9), where
            assert a.potential[c] == pytest.approx(b.potential[c], rel=rel, abs=1e-9), where
            seen.append((x.tree_depth, x.num_steps, x.diverging))
        assert torch.allclose(a.q, b.q, rtol=rel, atol=rel / 10)
        state = a
    return seen


def _run_compiled_against_eager(target, chains, max_depth, chunk, transitions, draws=KeyedDraws):
    model, x, obs, step = _chunk_targets()[target]
    compiled = BatchedPotential(_compiled_potential(model, x, obs))
    eager = BatchedPotential(_eager_potential(model, x, obs))
    kernel = NUTSKernel(max_tree_depth=max_depth, leaves_per_call=chunk)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileFallbackWarning)
        seen = _same_transitions(
            (compiled, kernel), (eager, kernel), chains, step, transitions, rel=1e-5, draws=draws
        )
    # the compiled graph ran (no fallback), and counted the leaves it computed
    (graph,) = compiled.transition_graphs.values()
    assert graph.error is None and graph._graphs
    assert compiled.num_calls >= sum(s for _, s, _ in seen) / chains
    return seen


def test_the_compiled_transition_is_the_eager_tree():
    """Trees deeper than the chunk (several chunks per doubling, so the in-graph plan
    of a chunk's last leaf), doublings of fewer leaves than a chunk (static plans),
    chains stopping inside a chunk, a cap at max_tree_depth, and the end-of-doubling
    uniform of each doubling's own block."""
    seen = _run_compiled_against_eager("correlated", 4, 5, 4, 6, draws=DecisiveDraws)
    assert max(d for d, _, _ in seen) >= 4  # doublings of 8 and more leaves
    assert any(s < 2**d - 1 for d, s, _ in seen)  # stopped inside a subtree
    assert any(d == 5 for d, _, _ in seen)  # the cap


# Each case compiles its own graph (tens of seconds): two cases cover both chain counts,
# the cap, divergences and default-size chunks inside a doubling; the correlated target
# with 4 chains and the default chunk is the default step's check above.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "chains", "max_depth"),
    [("funnel", 4, 3), ("eight_schools", 1, 5)],
)
def test_the_compiled_transition_with_the_default_chunk_is_the_eager_tree(
    target, chains, max_depth
):
    seen = _run_compiled_against_eager(target, chains, max_depth, LEAVES_PER_CALL, 8)
    if target == "funnel" and chains == 4:
        assert any(dv for _, _, dv in seen)  # divergences inside chunks
    if max_depth == 3:
        assert any(d == 3 for d, _, _ in seen)  # the cap
    elif target != "funnel":
        assert max(d for d, _, _ in seen) >= 4  # a doubling run in several chunks


def test_a_transition_that_cannot_compile_runs_eagerly_after_one_warning(monkeypatch):
    """The transition's graph fails to compile on its first call: that transition
    and every later one run the eager tree (on the compiled potential), warned once,
    and the chain is the eager one."""

    def failing(self):
        raise RuntimeError("InductorError: cannot compile this graph")

    monkeypatch.setattr(CompiledTransition, "_make", failing)
    model, x, obs, step = _chunk_targets()["correlated"]
    fallback = BatchedPotential(_compiled_potential(model, x, obs))
    eager = BatchedPotential(_eager_potential(model, x, obs))
    kernel = NUTSKernel(max_tree_depth=6, leaves_per_call=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = _same_transitions((fallback, kernel), (eager, kernel), 3, step, 4, rel=1e-5)
    fell_back = [w for w in caught if issubclass(w.category, CompileFallbackWarning)]
    assert len(fell_back) == 1 and "cannot compile this graph" in str(fell_back[0].message)
    assert "NUTS transition" in str(fell_back[0].message)  # names the graph, not the model
    (graph,) = fallback.transition_graphs.values()
    assert graph.error is not None
    assert max(d for d, _, _ in seen) >= 3


def _top_merge_inputs(chains=5, dim=7, seed=3):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype)

    ok = torch.tensor([True, True, False, True, True][:chains])
    forward = torch.tensor([True, False, True, False, True][:chains])
    tree_s = r(chains, 3, dtype=F64)
    tree_s[3, 0] = -math.inf  # a subtree of zero weight (all its leaves diverged)
    log_weight = r(chains, dtype=F64)
    return (
        ok,
        forward,
        torch.rand(chains, generator=g, dtype=F64),
        r(chains, 7, dim),
        tree_s,
        r(chains, 4, dim),
        r(chains, 4, dim),
        r(chains, 4, dim),
        r(chains, dim),
        log_weight,
        r(chains, dim),
        r(chains, dim),
        r(chains, dtype=F64),
        r(chains, dtype=F64),
    )


def test_the_top_level_merge_moves_only_the_chains_still_going():
    """The end of a doubling: chains that stopped keep their rows, the new subtree's
    last leaf becomes the end on its side, a subtree of zero weight is never taken."""
    from quivers.inference.nuts_iterative import top_level_merge

    args = _top_merge_inputs()
    merged = top_level_merge(*args)
    ok, forward = args[0], args[1]
    left, right = merged[0], merged[1]
    stopped = ~ok
    assert torch.equal(left[stopped], args[6][stopped])  # rows of stopped chains kept
    assert torch.equal(right[stopped], args[7][stopped])
    assert torch.equal(right[ok & forward], args[5][ok & forward])  # the new end
    assert torch.equal(left[ok & ~forward], args[5][ok & ~forward])
    assert torch.equal(merged[4][3], args[10][3])  # zero weight: the old proposal
    assert not merged[8][stopped].any()


def test_the_default_tree_of_one_chain_is_iterative_when_compiled(monkeypatch):
    """One chain: the iterative tree under compile=True (its chunked graphs are
    faster there), the recursive tree eagerly and once compiling failed; several
    chains: iterative either way. Which tree ran is seen by spying on both."""
    from quivers.inference import nuts_iterative

    ran = []

    def spy_iterative(kernel, batched, state, *args, **kwargs):
        ran.append("iterative")
        return state, [None] * state.q.shape[0]

    def spy_recursive(self, potential, point, *args, **kwargs):
        ran.append("recursive")
        return point, None

    monkeypatch.setattr(nuts_iterative, "transition_iterative", spy_iterative)
    monkeypatch.setattr(NUTSKernel, "transition_recursive", spy_recursive)
    model, x, obs, _ = _chunk_targets()["correlated"]
    with torch.no_grad():
        trace = model.trace(x, obs)
    kernel = NUTSKernel()
    point = PhasePoint(torch.zeros(6), 0.0, torch.zeros(6))
    inv_mass = torch.ones(6)
    compiled = Potential(model, x, obs, trace, compile=True)  # nothing compiled yet
    eager = Potential(model, x, obs, trace)
    kernel.transition(compiled, point, 0.1, inv_mass)
    kernel.transition(eager, point, 0.1, inv_mass)
    kernel.transition_batch(
        BatchedPotential(eager), BatchPoint.stack([point] * 2), [0.1] * 2, inv_mass.expand(2, 6)
    )
    assert ran == ["iterative", "recursive", "iterative"]
    ran.clear()
    compiled.compiled.error = "RuntimeError: cannot compile"  # as after a fallback
    kernel.transition(compiled, point, 0.1, inv_mass)
    NUTSKernel(tree="iterative").transition(eager, point, 0.1, inv_mass)
    NUTSKernel(tree="recursive").transition(
        Potential(model, x, obs, trace, compile=True), point, 0.1, inv_mass
    )
    assert ran == ["recursive", "iterative", "recursive"]


def test_the_compiled_tree_reads_the_current_data_between_transitions():
    """The transition's graph holds the model's data (traced once and called without
    dynamo, the data its trace read passed in as inputs). Observations changed in place are read where they are; replaced
    ones are validated by the next evaluation, which gives a new data record, and the
    graphs are traced again. Either way the compiled chains are the eager chains on
    the new data, not on the old."""
    from inference_models import LinearRegression

    x = torch.linspace(-1, 1, 15)
    obs = {"y": 2 * x - 0.5}
    model = LinearRegression()
    with torch.no_grad():
        trace = model.trace(x, obs)
    compiled = BatchedPotential(Potential(model, x, obs, trace, compile=True))
    eager = BatchedPotential(Potential(model, x, obs, trace))
    kernel = NUTSKernel(max_tree_depth=5, leaves_per_call=2)
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileFallbackWarning)
        for seed, change in enumerate([None, "in place", "replaced"]):
            if change == "in place":
                obs["y"].mul_(-3.0).add_(4.0)  # the tensor both potentials read
            elif change == "replaced":
                y = 0.5 * x + 3.0
                compiled.potential.observations["y"] = eager.potential.observations["y"] = y
            _same_transitions((compiled, kernel), (eager, kernel), 2, 0.1, 2, seed, rel=1e-4)
            records.append(compiled.potential.validated)
    assert records[2] is not records[1] is not records[0]
    (graph,) = compiled.transition_graphs.values()
    assert graph._baked_state is records[2] and graph._graphs
