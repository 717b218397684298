"""Vectorised chains (``chain_method="vectorized"``): the batched NUTS and HMC
transitions against the sequential kernels and closed-form posteriors.

The closed-form checks allow four Monte Carlo standard errors computed from each
run's own effective sample size (``inference_models.assert_posterior_moments``), with
a floor on that ESS; other tolerances are stated per test.
"""

from __future__ import annotations

import math

import pytest
import torch
from inference_models import (
    LinearRegression,
    NormalNormal,
    StandardNormal,
    Step,
    StepModel,
    assert_posterior_moments,
    correlated_2d,
    normal_normal_data,
)
from torch import distributions as D

from quivers.inference import MCMC, HMCKernel, InferenceCancelled, MCMCResult, NUTSKernel
from quivers.inference.batched import BatchedPotential, BatchPoint
from quivers.inference.potential import Potential


def _same_run(a: MCMCResult, b: MCMCResult) -> None:
    assert torch.equal(a.unconstrained, b.unconstrained)
    assert torch.equal(a.energy, b.energy)
    assert torch.equal(a.accept_stats, b.accept_stats)
    assert torch.equal(a.num_steps, b.num_steps)
    assert torch.equal(a.step_sizes, b.step_sizes)
    assert torch.equal(a.inverse_mass, b.inverse_mass)


@pytest.mark.parametrize(
    "kernel",
    [
        NUTSKernel(),
        NUTSKernel(max_tree_depth=3),
        NUTSKernel(tree="iterative"),
        HMCKernel(step_size=0.1, trajectory_length=1.0),
    ],
    ids=["nuts", "nuts-depth-3", "nuts-iterative", "hmc"],
)
def test_one_vectorised_chain_is_the_sequential_chain_draw_for_draw(kernel):
    """Same seed, same draws: warmup (step size, metric windows) and sampling (one
    chain builds its trees recursively by default, and with ``tree="iterative"``
    iteratively whichever the chain method)."""
    model = LinearRegression()
    x = torch.linspace(-1, 1, 15)
    obs = {"y": 2 * x - 0.5}
    runs = [
        MCMC(kernel, num_warmup=120, num_samples=60, seed=11, chain_method=m).run(model, x, obs)
        for m in ("sequential", "vectorized")
    ]
    _same_run(*runs)
    assert int(runs[0].num_steps.sum()) > 100  # real trajectories, not a degenerate run


def test_four_vectorised_chains_recover_a_closed_form_posterior():
    """Bayesian linear regression: posterior means and variances of (slope,
    intercept) within four Monte Carlo standard errors (sd / sqrt(ESS) for a mean,
    about var * sqrt(2 / ESS) for a variance, from the run's own bulk ESS), with
    vectorised and with sequential chains; every such ESS at least 200 of the 1,000
    draws (seen: 304-735). Seeds 5-10 pass (largest error 3.6 standard errors, a
    variance at seed 7); seed 10 runs here."""
    model = LinearRegression()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, generator=g)
    y = 2.0 * x - 1.0 + 0.5 * torch.randn(40, generator=g)
    mean, cov = model.posterior(x, y)
    for method in ("vectorized", "sequential"):
        result = MCMC(
            NUTSKernel(),
            num_warmup=150,
            num_samples=250,
            num_chains=4,
            seed=10,
            chain_method=method,
        ).run(model, x, {"y": y})
        assert result.samples["slope"].shape == (4, 250)
        draws = torch.stack([result.samples["slope"], result.samples["intercept"]], -1)
        assert_posterior_moments(draws, mean, cov, min_ess=200)
        assert float(result.r_hat["slope"]) < 1.02  # (its bulk ESS: the floor above)
        assert result.divergence_counts.tolist() == [0, 0, 0, 0]
        # every chain adapted on its own
        assert len(set(result.step_sizes.tolist())) == 4


def test_vectorised_chains_recover_a_correlated_gaussian():
    """Means, variances and the covariance of a correlated 2-d Gaussian (correlation
    0.8) within four Monte Carlo standard errors of the run's own ESS, every ESS at
    least 120 of the 1,200 draws (seen: 164-416). A sampler that lost the dependence
    would be off by 0.8 * 2 = 1.6 in the covariance, about 12 of its standard errors.
    Seeds 0-11 all pass (largest error 3.0 standard errors, a mean at seed 7); seed
    5 runs here."""
    model = correlated_2d()
    result = MCMC(NUTSKernel(), num_warmup=150, num_samples=300, num_chains=4, seed=5).run(
        model, None, {}
    )
    true_cov = model.scale_tril @ model.scale_tril.T
    assert_posterior_moments(
        result.samples["z"], model.mean, true_cov, min_ess=120, covariances=True
    )


class _Guarded(StepModel):
    """mu ~ Normal(0, 1) whose log density raises (as a support check would) when
    |mu| > 20: a chain thrown out there fails alone."""

    def steps(self) -> list[Step]:
        def make(x, e):
            return D.Normal(torch.tensor(0.0), torch.tensor(1.0))

        return [Step("mu", make, is_global=True)]

    def log_joint(self, x, values, **run):
        if float(values["mu"].detach().abs().max()) > 20:
            raise ValueError("mu out of range")
        return super().log_joint(x, values, **run)


def test_one_rows_failure_is_that_rows_infinite_energy():
    model = _Guarded()
    potential = Potential(model, None, {}, model.trace(None, {}))
    batched = BatchedPotential(potential)
    u = torch.tensor([[0.5], [30.0], [-1.0]])
    energy, grad = batched.value_and_grad(u)
    assert energy[1] == math.inf and float(grad[1].abs().sum()) == 0.0
    for row in (0, 2):
        e, g = potential.value_and_grad(u[row])
        assert energy[row] == pytest.approx(e, rel=1e-6)
        assert torch.allclose(grad[row], g)


def test_a_diverging_chain_does_not_disturb_the_others():
    """Chains 0-2 step 0.8, chain 3 a step size that diverges on every transition:
    chain 3 never moves and reports every divergence, the others report none and
    their pooled draws are the posterior."""
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    potential = Potential(model, x, obs, model.trace(x, obs))
    batched = BatchedPotential(potential)
    kernel = NUTSKernel()
    torch.manual_seed(1)
    start = torch.full((4, 1), float((mean - 0.0) / 1.0))
    energy, grad = batched.value_and_grad(start)
    state = BatchPoint(start, energy, grad)
    steps = [0.8 * sd, 0.8 * sd, 0.8 * sd, 1e4]
    inv_mass = torch.ones(4, 1)
    draws, diverged = [], [0, 0, 0, 0]
    for _ in range(300):
        state, infos = kernel.transition_batch(batched, state, steps, inv_mass)
        draws.append(state.q[:, 0].clone())
        for c, info in enumerate(infos):
            diverged[c] += int(info.diverging)
    chain = torch.stack(draws)  # (300, 4)
    assert diverged == [0, 0, 0, 300]
    assert bool((chain[:, 3] == start[3, 0]).all())
    pooled = chain[:, :3].reshape(-1).double()
    assert abs(float(pooled.mean()) - mean) < 0.1 * sd
    assert abs(float(pooled.std()) - sd) < 0.1 * sd


def test_vectorised_progress_and_cancellation_keep_every_chains_draws():
    model = NormalNormal()
    x, obs = normal_normal_data()
    seen = []

    def stop() -> bool:
        return sum(1 for i in seen if i.phase == "sampling") >= 6

    with pytest.raises(InferenceCancelled, match="vectorised chains") as info:
        MCMC(NUTSKernel(), num_warmup=5, num_samples=20, num_chains=3, seed=0).run(
            model, x, obs, progress=seen.append, should_stop=stop
        )
    assert [(i.chain, i.phase) for i in seen] == [(-1, "warmup")] * 5 + [(-1, "sampling")] * 6
    partial = info.value.partial
    assert isinstance(partial, MCMCResult) and not partial.complete
    assert partial.samples["mu"].shape == (3, 6)
    assert partial.energy.shape == (3, 6)


def test_sequential_cancellation_keeps_the_first_chains_partial_draws():
    model = NormalNormal()
    x, obs = normal_normal_data()
    seen = []

    def stop() -> bool:
        return sum(1 for i in seen if i.phase == "sampling") >= 4

    with pytest.raises(InferenceCancelled) as info:
        MCMC(
            NUTSKernel(), num_warmup=5, num_samples=20, num_chains=2, chain_method="sequential"
        ).run(model, x, obs, progress=seen.append, should_stop=stop)
    partial = info.value.partial
    assert partial is not None and not partial.complete
    assert partial.samples["mu"].shape == (1, 4)


def test_chain_method_is_checked():
    with pytest.raises(ValueError, match="chain_method"):
        MCMC(NUTSKernel(), chain_method="threads")
    assert MCMC(NUTSKernel(), num_chains=2).chain_method == "vectorized"
    assert MCMC(NUTSKernel()).chain_method == "sequential"


def test_parallel_chains_are_sequential_chains_seeded_seed_plus_c():
    model = NormalNormal()
    x, obs = normal_normal_data()
    seen = []
    both = MCMC(
        NUTSKernel(), num_warmup=20, num_samples=15, num_chains=2, seed=3, chain_method="parallel"
    ).run(model, x, obs, progress=seen.append)
    assert both.samples["mu"].shape == (2, 15) and both.complete
    assert {i.chain for i in seen} == {0, 1} and len(seen) == 2 * 35
    for c in range(2):
        alone = MCMC(NUTSKernel(), num_warmup=20, num_samples=15, seed=3 + c).run(model, x, obs)
        assert torch.equal(both.unconstrained[c], alone.unconstrained[0])


# ------------------------------------------------ picking wide rows by stacking them


@pytest.mark.parametrize("shape", [(4, 3000), (5, 4, 600), (3, 7)])
def test_pick_is_torch_where_on_rows_of_any_width(shape):
    from quivers.inference import batched

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    for mask in ([True, False] * 3)[: shape[0]], [False] * (shape[0] - 1) + [True]:
        got = batched.pick(mask, a, b)
        rows = torch.tensor(mask).reshape((-1,) + (1,) * (a.dim() - 1))
        assert torch.equal(got, torch.where(rows, a, b))
        # a fresh tensor, as torch.where's: later in-place work on it leaves a and b
        assert got.data_ptr() not in (a.data_ptr(), b.data_ptr())
    assert batched.pick([True] * shape[0], a, b) is a


def test_wide_lock_step_trees_are_the_same_with_either_pick(monkeypatch):
    """Four chains of a 2,500-d Gaussian (ends of 4 x 2,500 per chain, above
    ``ROW_COPY_MIN``) through the recursive lock-step tree: picking rows by stacking
    them gives the same transitions, bit for bit, as torch.where, with the chains
    going in mixed directions and stopping at different depths."""
    from quivers.inference import batched as module

    model = StandardNormal(2500)
    potential = Potential(model, None, {}, model.trace(None, {}))
    bp = BatchedPotential(potential)
    kernel = NUTSKernel(tree="recursive", max_tree_depth=6)
    steps = [0.3, 0.5, 0.8, 1.1]
    inv_mass = torch.ones(4, 2500) + 0.3 * torch.arange(4)[:, None]

    def run():
        torch.manual_seed(3)
        q = torch.randn(4, 2500)
        energy, grad = bp.value_and_grad(q)
        state = BatchPoint(q, energy, grad)
        out = []
        for _ in range(4):
            state, infos = kernel.transition_batch(bp, state, steps, inv_mass)
            out.append((state.q.clone(), [(i.tree_depth, i.num_steps, i.energy) for i in infos]))
        return out

    stacked = run()
    monkeypatch.setattr(module, "ROW_COPY_MIN", 10**9)
    where = run()
    for (q1, i1), (q2, i2) in zip(stacked, where, strict=True):
        assert torch.equal(q1, q2) and i1 == i2
    assert len({d for _, infos in stacked for d, _, _ in infos}) >= 2


def test_four_wide_lock_step_chains_recover_a_closed_form_posterior():
    """The recursive lock-step tree on a model wide enough for the row-copy picks
    (2,500 coordinates, above ``ITERATIVE_MAX_DIM``'s neighbour ``ROW_COPY_MIN``):
    four chains of N(0, I) with 150 warmup + 150 draws each; the first 12 coordinates'
    means and variances within four Monte Carlo standard errors of 0 and 1 (from the
    run's own ESS, at least 100), and no divergences."""
    model = StandardNormal(2500)
    result = MCMC(
        NUTSKernel(tree="recursive"), num_warmup=150, num_samples=150, num_chains=4, seed=2
    ).run(model, None, {})
    z = result.samples["z"][..., :12]  # (chains, draws, 12)
    assert_posterior_moments(z, torch.zeros(12), torch.ones(12), min_ess=100)
    assert int(result.divergence_counts.sum()) == 0
