"""Standard posteriors, written as the gallery's QVR programs and sampled by NUTS:
eight schools (centred and non-centred, Rubin 1981), Neal's funnel (Neal 2003) and a
logistic regression on scikit-learn's breast cancer data.

Every mean is checked against an independent computation (``posterior_references``:
quadrature for eight schools, the exact prior for the funnel, Laplace plus importance
sampling for the regression), with tolerances stated in units of the reference
posterior sd. Seeds are fixed, so each run is deterministic; the default suite runs
short chains with wide tolerances, the slow step (CI's second run) the long ones.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from posterior_references import (
    EIGHT_SCHOOLS_SIGMA,
    EIGHT_SCHOOLS_Y,
    breast_cancer,
    eight_schools_moments,
    logistic_posterior,
)

from quivers.dsl import load
from quivers.inference import MCMC, MCMCResult, NUTSKernel

SOURCE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "source"


def nuts(  # noqa: ANN201
    model: torch.nn.Module,
    x,
    obs,
    warmup: int,
    draws: int,
    chains: int,
    seed: int,
    depth=10,  # noqa: ANN001
):
    kernel = NUTSKernel(max_tree_depth=depth)
    return MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains, seed=seed).run(
        model, x, obs
    )


def divergences(result: MCMCResult) -> int:
    return int(result.divergence_counts.sum())


# ------------------------------------------------------------------ eight schools


def eight_schools(centred: bool) -> torch.nn.Module:
    name = "eight_schools_centred" if centred else "eight_schools"
    return load(SOURCE / f"{name}.qvr").morphism


def eight_schools_data() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return torch.arange(8), {
        "y": torch.tensor(EIGHT_SCHOOLS_Y, dtype=torch.float32),
        "sigma": torch.tensor(EIGHT_SCHOOLS_SIGMA, dtype=torch.float32),
    }


def test_the_quadrature_reference_is_stans_eight_schools_posterior() -> None:
    """The reference itself: Stan's published means (mu 4.4, tau 3.6; posteriordb's
    eight_schools_noncentered reference draws) to the digits they are quoted with."""
    ref = eight_schools_moments()
    assert round(ref["mu"].mean, 1) == 4.4 and round(ref["tau"].mean, 1) == 3.6
    assert 3.0 < ref["mu"].sd < 3.6 and 2.9 < ref["tau"].sd < 3.5


def test_eight_schools_non_centred_recovers_the_posterior_means() -> None:
    """Cheap: 2 vectorised chains, 100 warmup + 150 draws. mu and tau within 0.3
    posterior sd of the quadrature means (their Monte Carlo error here is about 0.08
    sd: bulk ESS about 150), and no divergence."""
    ref = eight_schools_moments()
    x, obs = eight_schools_data()
    result = nuts(eight_schools(centred=False), x, obs, warmup=100, draws=150, chains=2, seed=3)
    for name in ("mu", "tau"):
        got = float(result.samples[name].mean())
        assert abs(got - ref[name].mean) < 0.3 * ref[name].sd, (name, got, ref[name])
    assert divergences(result) == 0


def test_eight_schools_centred_reports_divergences() -> None:
    """Cheap: one chain of the centred form, 60 warmup + 40 draws, trees of depth at
    most 6: the funnel between tau and theta shows as divergent transitions (here
    while the step size adapts; the slow test below counts them among the draws),
    reported per chain and phase."""
    x, obs = eight_schools_data()
    model = eight_schools(centred=True)
    result = nuts(model, x, obs, warmup=60, draws=40, chains=1, seed=1, depth=6)
    assert int(result.warmup_divergence_counts.sum()) + divergences(result) >= 1
    assert int(result.diverging.sum()) == divergences(result)


@pytest.mark.slow
def test_eight_schools_non_centred_is_clean_and_the_centred_form_diverges() -> None:
    """4 vectorised chains, 150 warmup + 200 draws each (fixed seed). Non-centred:
    mu and tau within 0.5 of Stan's means and within 0.15 posterior sd of the
    quadrature means (Monte Carlo error about 0.06 sd); centred, with trees of depth at
    most 6 (a divergent trajectory stops at its first divergence whatever the cap; the
    cap only shortens the long trees away from the neck): the funnel between tau and
    theta shows as divergences among the draws, more than three times the non-centred
    form's (with this seed 12 against 1)."""
    ref = eight_schools_moments()
    x, obs = eight_schools_data()
    runs = {
        centred: nuts(
            eight_schools(centred), x, obs, 150, 200, chains=4, seed=1, depth=6 if centred else 10
        )
        for centred in (False, True)
    }
    clean, funnel = runs[False], runs[True]
    assert abs(float(clean.samples["mu"].mean()) - 4.4) < 0.5
    assert abs(float(clean.samples["tau"].mean()) - 3.6) < 0.5
    for name in ("mu", "tau"):
        got = float(clean.samples[name].mean())
        assert abs(got - ref[name].mean) < 0.15 * ref[name].sd, (name, got, ref[name])
    assert int(funnel.divergence_counts.sum()) >= 3
    assert int(funnel.divergence_counts.sum()) > 3 * int(clean.divergence_counts.sum())


# ------------------------------------------------------------------ Neal's funnel


def funnels() -> tuple[torch.nn.Module, torch.nn.Module]:
    prog = load(SOURCE / "neals_funnel.qvr")
    return prog.morphism, prog.neals_funnel_noncentred


def test_the_two_funnels_are_the_same_density() -> None:
    """The non-centred program's log joint is log N(v; 0, 3) + sum_k log N(z_k; 0, 1),
    and its value x = exp(v / 2) z has, under the centred program, the density of the
    change of variables: log p_c(v, x) = log p_nc(v, z) - 9 v / 2."""
    centred, noncentred = funnels()
    v = torch.tensor(-1.3)
    z = torch.linspace(-2.0, 2.0, 9).reshape(9, 1)
    x = torch.exp(v / 2) * z
    ids = torch.arange(9)
    log_nc = noncentred.log_joint(ids, {"v": v, "z": z})
    closed = (
        torch.distributions.Normal(0.0, 3.0).log_prob(v)
        + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum()
    )
    assert torch.allclose(log_nc, closed, atol=1e-5)
    log_c = centred.log_joint(ids, {"v": v, "x": x})
    assert torch.allclose(log_c, log_nc - 9 * v / 2, atol=1e-5)
    returned = noncentred.traced_run(ids, {"v": v, "z": z})[0]
    assert torch.allclose(returned, x)


def test_the_non_centred_funnel_recovers_v_and_the_centred_one_diverges() -> None:
    """Cheap: one chain each. Non-centred, 100 warmup + 300 draws: v's mean and sd
    within 0.25 and 0.15 of the exact N(0, 3) in units of sd (bulk ESS about 300, so
    the Monte Carlo errors are about 0.06 and 0.04 sd), z's pooled sd within 0.1 of
    1, no divergence. Centred, 60 warmup + 40 draws (depth at most 6): divergences are reported (in
    warmup on this budget: the adapted step size then keeps the chain out of the
    neck, which is why a short run can look clean; the slow test runs longer)."""
    centred, noncentred = funnels()
    ids = torch.arange(9)
    clean = nuts(noncentred, ids, {}, warmup=100, draws=300, chains=1, seed=0)
    v = clean.samples["v"].flatten()
    assert abs(float(v.mean())) < 0.25 * 3.0
    assert abs(float(v.std()) - 3.0) < 0.15 * 3.0
    assert abs(float(clean.samples["z"].std()) - 1.0) < 0.1
    assert divergences(clean) == 0
    funnel = nuts(centred, ids, {}, warmup=60, draws=40, chains=1, seed=0, depth=6)
    assert int(funnel.warmup_divergence_counts.sum()) + divergences(funnel) >= 1


@pytest.mark.slow
def test_funnel_marginals_by_nuts() -> None:
    """4 chains, 300 warmup + 500 draws. Non-centred: v's mean, sd and 5% and 95%
    quantiles (exact: 0, 3, -/+4.93) within 0.1, 0.07, 0.2 sd (Monte Carlo error
    about 0.03, 0.02, 0.05 sd at bulk ESS 1500), and x = exp(v / 2) z has log|x| of
    mean -(gamma + log 2) / 2 = -0.635 and variance 9/4 + pi^2/8 = 3.48 (within 0.1
    and 10%). Centred, 4 chains of 150 warmup + 150 draws with trees of depth at most 6
    (as in the cheap test: a trajectory stops at its first divergence whatever the
    cap, and the cap only shortens the long trees of the funnel's mouth; with this
    seed 28 transitions diverge, 4 of them among the draws): divergences are reported
    (in warmup or among the draws)."""
    centred, noncentred = funnels()
    ids = torch.arange(9)
    clean = nuts(noncentred, ids, {}, warmup=300, draws=500, chains=4, seed=0)
    v = clean.samples["v"].flatten().double()
    assert abs(float(v.mean())) < 0.1 * 3.0
    assert abs(float(v.std()) - 3.0) < 0.07 * 3.0
    q05, q95 = (float(q) for q in torch.quantile(v, torch.tensor([0.05, 0.95]).double()))
    assert abs(q05 + 4.935) < 0.2 * 3.0 and abs(q95 - 4.935) < 0.2 * 3.0
    z = clean.samples["z"].double().reshape(v.shape[0], 9)
    log_abs_x = (v[:, None] / 2 + z.abs().log()).flatten()
    assert abs(float(log_abs_x.mean()) + (0.5772156649 + math.log(2)) / 2) < 0.1
    assert abs(float(log_abs_x.var()) / (9 / 4 + math.pi**2 / 8) - 1) < 0.1
    assert divergences(clean) <= 2
    funnel = nuts(centred, ids, {}, warmup=150, draws=150, chains=4, seed=0, depth=6)
    assert int(funnel.warmup_divergence_counts.sum()) + divergences(funnel) >= 4


# ------------------------------------------------------------------ logistic regression


def logistic_model() -> torch.nn.Module:
    return load(SOURCE / "breast_cancer_logistic.qvr").morphism


def breast_cancer_tensors() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x, y = breast_cancer()
    return torch.tensor(x, dtype=torch.float32), {"y": torch.tensor(y).long()}


def test_logistic_program_is_the_reference_posterior_on_the_real_data() -> None:
    """The compiled program (float32) against the reference's float64 log posterior
    on the 569 tumours: at the mode and at four Laplace draws the log joint differs
    by a constant (the priors' normalisers) to 1e-3 nats (float32 round-off of a sum
    of about 600 terms), and its gradient at the mode is zero to 2e-3 per coordinate."""
    x_np, y_np = breast_cancer()
    ref = logistic_posterior(x_np, y_np, draws=10)
    model = logistic_model()
    x, obs = breast_cancer_tensors()
    rng = np.random.default_rng(1)
    points = [ref.mode] + list(rng.multivariate_normal(ref.mode, ref.laplace_cov, size=4))
    design = np.hstack([np.ones((len(x_np), 1)), x_np])
    prior_sd = np.array([2.5] + [1.0] * 30)
    normaliser = -float(np.sum(np.log(prior_sd))) - 31 * 0.5 * math.log(2 * math.pi)
    for theta in points:
        eta = design @ theta
        exact = float(np.sum(y_np * eta - np.logaddexp(0.0, eta)))
        exact += -0.5 * float(np.sum((theta / prior_sd) ** 2)) + normaliser
        values = {
            "alpha": torch.tensor(theta[0], dtype=torch.float32),
            "beta": torch.tensor(theta[1:], dtype=torch.float32),
        }
        got = float(model.log_joint(x, {**obs, **values}))
        assert abs(got - exact) < 1e-3, (got, exact)
    alpha = torch.tensor(ref.mode[0], dtype=torch.float32, requires_grad=True)
    beta = torch.tensor(ref.mode[1:], dtype=torch.float32, requires_grad=True)
    model.log_joint(x, {**obs, "alpha": alpha, "beta": beta}).backward()
    assert alpha.grad is not None and beta.grad is not None
    assert float(alpha.grad.abs()) < 2e-3 and float(beta.grad.abs().max()) < 2e-3


@pytest.mark.slow
def test_logistic_regression_nuts_matches_importance_sampling() -> None:
    """4 vectorised chains, 200 warmup + 200 draws on the 569 x 30 breast cancer data.
    Every one of the 31 posterior means within 0.25 reference sd of the importance
    sampling reference (its own error about 0.02 sd: 100,000 proposals, weight ESS
    about 3,000; NUTS's is 1 / sqrt(ESS) sd per coordinate, about 0.06 sd at the
    smallest bulk ESS of these 800 draws, asserted above 250 below, so 0.25 is four of
    them, for the worst of 31), every sd within 20% (the relative error of an sd is
    1 / sqrt(2 ESS) = 0.045, so 20% is four and a half), no divergence, and R-hat
    below 1.05. The Laplace mode alone is up to 0.3 sd from the mean."""
    x_np, y_np = breast_cancer()
    ref = logistic_posterior(x_np, y_np, draws=100_000)
    assert ref.importance_ess > 1000
    x, obs = breast_cancer_tensors()
    result = nuts(logistic_model(), x, obs, warmup=200, draws=200, chains=4, seed=0)
    draws = torch.cat(
        [result.samples["alpha"].reshape(-1, 1), result.samples["beta"].reshape(-1, 30)], 1
    ).double()
    mean, sd = draws.mean(0).numpy(), draws.std(0).numpy()
    err = np.abs(mean - ref.mean) / ref.sd
    assert err.max() < 0.25, np.round(err, 2)
    assert np.abs(sd / ref.sd - 1).max() < 0.2, np.round(sd / ref.sd, 2)
    assert divergences(result) == 0
    assert float(result.r_hat["beta"].max()) < 1.05 and float(result.r_hat["alpha"]) < 1.05
    # the Monte Carlo error the tolerances above are derived from
    assert float(result.ess["beta"].min()) > 250 and float(result.ess["alpha"]) > 250
