"""SVI with the autoguides on models with closed-form posteriors."""

from __future__ import annotations

import math

import pytest
import torch
from inference_models import (
    BetaBernoulli,
    GammaPoisson,
    LinearRegression,
    NormalNormal,
    Step,
    StepModel,
    TrajectoryModel,
    normal_normal_data,
)
from torch import distributions as D

from quivers.inference import (
    ELBO,
    SVI,
    AutoDeltaGuide,
    AutoMultivariateNormalGuide,
    AutoNormalGuide,
    Predictive,
)


def adam(lr):
    return lambda params: torch.optim.Adam(params, lr=lr)


def fit(svi, x, obs, steps):
    """``steps`` Adam steps, then ``steps // 2`` at a tenth of the rate to settle the
    stochastic iterates near the optimum."""
    svi.run(x, obs, num_steps=steps)
    for group in svi.optim.param_groups:
        group["lr"] = group["lr"] / 10
    svi.run(x, obs, num_steps=steps // 2)


def test_normal_normal_autonormal_recovers_posterior():
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    guide = AutoNormalGuide(model, observed_names={"y"})
    svi = SVI(model, guide, adam(0.05), ELBO(num_particles=8))
    fit(svi, x, obs, 800)
    loc, scale = guide.site_loc_scale("mu")
    # the family contains the exact posterior: tolerance 0.1 posterior sd, 10 % on sd
    assert abs(float(loc) - mean) < 0.1 * sd
    assert abs(float(scale) - sd) < 0.1 * sd


def test_beta_bernoulli_through_unit_interval():
    model = BetaBernoulli()
    y = (torch.rand(40, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    x = torch.zeros(40)
    post = model.posterior(y)
    guide = AutoNormalGuide(model)
    svi = SVI(model, guide, adam(0.05), ELBO(num_particles=8))
    fit(svi, x, {"y": y}, 800)
    draws = guide.sample(x, {"y": y}, num_particles=20000).values["p"].detach()
    assert guide.layout.slots[0].transform is not None  # sigmoid: support is (0, 1)
    assert bool(((draws > 0) & (draws < 1)).all())
    # logit-normal vs Beta: mean within 0.02 (post sd is 0.065), sd within 15 %
    assert abs(float(draws.mean()) - float(post.mean)) < 0.02
    assert abs(float(draws.std()) - float(post.stddev)) < 0.15 * float(post.stddev)


def test_gamma_poisson_through_positive_support():
    model = GammaPoisson()
    y = D.Poisson(4.0).sample((30,))
    x = torch.zeros(30)
    post = model.posterior(y)
    guide = AutoNormalGuide(model)
    svi = SVI(model, guide, adam(0.05), ELBO(num_particles=8))
    fit(svi, x, {"y": y}, 800)
    draws = guide.sample(x, {"y": y}, num_particles=20000).values["rate"].detach()
    assert bool((draws > 0).all())
    # log-normal vs Gamma(114, 31): mean within 0.15 posterior sd, sd within 15 %
    assert abs(float(draws.mean()) - float(post.mean)) < 0.15 * float(post.stddev)
    assert abs(float(draws.std()) - float(post.stddev)) < 0.15 * float(post.stddev)


def test_linear_regression_full_rank_guide_recovers_mean_and_covariance():
    model = LinearRegression()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, generator=g)
    y = 2.0 * x - 1.0 + 0.5 * torch.randn(50, generator=g)
    mean, cov = model.posterior(x, y)
    guide = AutoMultivariateNormalGuide(model)
    svi = SVI(model, guide, adam(0.03), ELBO(num_particles=16))
    fit(svi, x, {"y": y}, 1000)
    loc = guide.loc.detach().double()  # (slope, intercept): identity transforms
    sd = cov.diagonal().sqrt()
    assert bool(((loc - mean).abs() < 0.15 * sd).all())
    got = guide.covariance.detach().double()
    assert torch.allclose(got.diagonal().sqrt(), sd, rtol=0.15)
    corr = cov[0, 1] / (sd[0] * sd[1])
    got_corr = got[0, 1] / got.diagonal().sqrt().prod()
    assert abs(float(got_corr - corr)) < 0.15


def test_delta_guide_finds_the_mode():
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, _ = model.posterior(obs["y"])  # Gaussian posterior: mode == mean
    guide = AutoDeltaGuide(model)
    svi = SVI(model, guide, adam(0.05), ELBO())
    svi.run(x, obs, num_steps=400)
    assert abs(float(guide.median()["mu"]) - mean) < 1e-3


def test_lazy_guide_parameters_are_added_to_the_optimizer():
    """The seed snippet builds the optimiser before the guide has parameters."""
    model = TrajectoryModel()
    x = torch.randint(0, 5, (3, 6))
    obs = {"y": model.rsample(x).detach()}
    guide = AutoNormalGuide(model, observed_names={"y"})
    assert list(guide.parameters()) == []
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=5e-2)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    before = guide.state_dict() if guide.is_setup else None
    losses = [svi.step(x, obs) for _ in range(30)]
    assert before is None and guide.is_setup
    assert len(optim.param_groups) == 2
    added = {id(p) for p in optim.param_groups[1]["params"]}
    assert added == {id(p) for p in guide.parameters()}
    assert optim.param_groups[1]["lr"] == 5e-2
    assert guide.loc.shape == (3 * 6 * 4,)
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) < sum(losses[:5])
    # a second step does not add the group again
    svi.step(x, obs)
    assert len(optim.param_groups) == 2


def test_vectorised_particles_match_the_loop():
    model = LinearRegression()
    x = torch.randn(10)
    obs = {"y": 2 * x}
    guide = AutoNormalGuide(model)
    guide.setup(x, obs)
    torch.manual_seed(5)
    vec = ELBO(num_particles=6)(model, guide, x, obs)
    torch.manual_seed(5)
    loop = ELBO(num_particles=6, vectorize_particles=False)(model, guide, x, obs)
    assert torch.allclose(vec, loop, atol=1e-5)
    elbo = ELBO(num_particles=4)
    elbo(model, guide, x, obs)
    assert elbo._vmap_ok[id(model)] is True


def test_particles_fall_back_to_a_loop_when_vmap_fails():
    model = TrajectoryModel()
    x = torch.randint(0, 5, (2, 3))
    obs = {"y": torch.zeros(2)}
    guide = AutoNormalGuide(model)
    elbo = ELBO(num_particles=3)

    class NoVmap(type(model)):
        def log_joint(self, x, values, **run):
            if bool(values["h"].detach().isnan().any()):  # data-dependent: no vmap
                raise AssertionError
            return super().log_joint(x, values, **run)

    model.__class__ = NoVmap
    loss = elbo(model, guide, x, obs)
    assert torch.isfinite(loss)
    assert elbo._vmap_ok[id(model)] is False


def test_errors_are_clear():
    model = TrajectoryModel()
    x = torch.randint(0, 5, (2, 3))
    guide = AutoNormalGuide(model)
    svi = SVI(model, guide, adam(0.01), ELBO())
    with pytest.raises(ValueError, match="'y'.*no value"):
        svi.step(x, {})
    svi.step(x, {"y": torch.zeros(2)})
    with pytest.raises(ValueError, match="not amortised"):
        svi.step(torch.randint(0, 5, (4, 3)), {"y": torch.zeros(4)})

    class DiscreteLatent(StepModel):
        def steps(self):
            return [Step("k", lambda x, e: D.Poisson(torch.tensor(3.0)), is_global=True)]

    with pytest.raises(ValueError, match="'k' has discrete support"):
        AutoNormalGuide(DiscreteLatent()).setup(torch.zeros(3), {})


def test_predictive_from_guide_and_prior():
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    guide = AutoNormalGuide(model)
    SVI(model, guide, adam(0.05), ELBO(num_particles=4)).run(x, obs, num_steps=500)
    post = Predictive(model, guide, num_samples=4000)(x, obs)
    assert post["mu"].shape == (4000,) and post["y"].shape == (4000, 20)
    # posterior predictive of y_i: Normal(mean, sqrt(sd^2 + sigma^2))
    assert abs(float(post["y"].mean()) - mean) < 0.05
    assert abs(float(post["y"][:, 0].std()) - math.sqrt(sd**2 + 1.0)) < 0.1
    # The latents are the guide's draws, not its median: the sd of mu is the guide's
    # scale, and the row mean of y, mu + mean(noise), has variance scale^2 + 1/20
    # (0.10 here; 0.05 for a collapsed guide). From 4000 draws the relative standard
    # error of an sd is 1/sqrt(8000) = 1.1 % and of a variance sqrt(2/4000) = 2.2 %:
    # the tolerances 5 % and 10 % are about 4.5 standard errors.
    _, scale = guide.site_loc_scale("mu")
    assert abs(float(post["mu"].std()) / float(scale) - 1) < 0.05
    row_var = float(post["y"].mean(1).var())
    assert abs(row_var / (float(scale) ** 2 + 1 / 20) - 1) < 0.1, row_var
    prior = Predictive(model, None, num_samples=4000)(x)
    assert abs(float(prior["mu"].std()) - 2.0) < 0.1


def test_init_loc_and_return_sites():
    model = GammaPoisson()
    x = torch.zeros(5)
    obs = {"y": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])}
    guide = AutoNormalGuide(model, init_loc={"rate": torch.tensor(2.5)}, init_scale=0.05)
    guide.setup(x, obs)
    assert float(guide.median()["rate"]) == pytest.approx(2.5, rel=1e-6)
    assert float(guide.site_loc_scale("rate")[1]) == pytest.approx(0.05, rel=1e-5)
    with pytest.raises(KeyError, match="not a latent site"):
        AutoNormalGuide(model, init_loc={"y": torch.zeros(5)}).setup(x, obs)
    pred = Predictive(model, guide, num_samples=7, return_sites={"y"})(x, obs)
    assert set(pred) == {"y"} and pred["y"].shape == (7, 5)


def test_guides_start_at_the_feasible_point_or_a_prior_draw():
    model = BetaBernoulli()
    x, obs = torch.zeros(8), {"y": torch.ones(8)}
    feasible = AutoNormalGuide(model, observed_names={"y"})
    feasible.setup(x, obs)
    assert torch.equal(feasible.loc, torch.zeros_like(feasible.loc))
    median = feasible.median()
    assert all(torch.allclose(torch.as_tensor(v), torch.tensor(0.5)) for v in median.values())
    torch.manual_seed(1)
    prior = AutoNormalGuide(model, observed_names={"y"}, init_strategy="prior")
    prior.setup(x, obs)
    assert not torch.equal(prior.loc, torch.zeros_like(prior.loc))
    with pytest.raises(ValueError, match="init_strategy"):
        AutoNormalGuide(model, init_strategy="median")
