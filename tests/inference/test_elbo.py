"""The single-particle ELBO (the path of ``qvr fit`` and the editor's fit command)
against closed forms on the normal-normal model.

- At the exact posterior, log p(y, mu) - log q(mu) = log p(y) for every mu, so each
  K=1 estimate equals minus the log evidence (zero variance).
- For any Gaussian guide q = Normal(m, s) the ELBO is analytic:
  E_q[log p(mu)] + sum_i E_q[log p(y_i | mu)] + H(q); the mean of many K=1 estimates
  must match it within its Monte Carlo error.
- The K=1 gradient is unbiased, so SVI with one particle converges to the exact
  posterior's mean and sd (the family contains it).
"""

from __future__ import annotations

import math

import torch
from inference_models import NormalNormal, normal_normal_data

from quivers.inference import ELBO, SVI, AutoNormalGuide


def _log_evidence(model: NormalNormal, y: torch.Tensor) -> float:
    """log p(y): y ~ Normal(m0 1, sigma^2 I + s0^2 1 1^T), marginalising mu."""
    y = y.double()
    n = y.numel()
    cov = model.sigma**2 * torch.eye(n, dtype=torch.float64) + model.s0**2 * torch.ones(
        n, n, dtype=torch.float64
    )
    dist = torch.distributions.MultivariateNormal(torch.full((n,), model.m0).double(), cov)
    return float(dist.log_prob(y))


def _analytic_elbo(model: NormalNormal, y: torch.Tensor, m: float, s: float) -> float:
    """E_q[log p(y, mu)] + H(q) for q = Normal(m, s), written out term by term."""
    prior = -0.5 * math.log(2 * math.pi * model.s0**2) - ((m - model.m0) ** 2 + s**2) / (
        2 * model.s0**2
    )
    lik = sum(
        -0.5 * math.log(2 * math.pi * model.sigma**2)
        - ((yi - m) ** 2 + s**2) / (2 * model.sigma**2)
        for yi in y.tolist()
    )
    entropy = 0.5 * math.log(2 * math.pi * math.e * s**2)
    return prior + lik + entropy


def _guide_at(model, x, obs, m: float, s: float) -> AutoNormalGuide:
    guide = AutoNormalGuide(model, init_loc={"mu": torch.tensor(m)}, init_scale=s)
    guide.setup(x, obs)
    return guide


def test_single_particle_elbo_at_the_posterior_is_the_log_evidence():
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    guide = _guide_at(model, x, obs, mean, sd)
    want = -_log_evidence(model, obs["y"])
    elbo = ELBO(num_particles=1)
    losses = [elbo.loss(model, guide, x, obs) for _ in range(50)]
    # float32 arithmetic on terms of size ~30: 1e-3 absolute is ~30 ulps
    assert max(abs(v - want) for v in losses) < 1e-3, (want, losses[:5])


def test_single_particle_elbo_matches_the_analytic_elbo_of_a_gaussian_guide():
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    m, s = mean + 0.7, 0.5  # away from the posterior: the estimate has variance
    guide = _guide_at(model, x, obs, m, s)
    want = -_analytic_elbo(model, obs["y"], m, s)
    elbo = ELBO(num_particles=1)
    draws = torch.tensor([elbo.loss(model, guide, x, obs) for _ in range(2000)])
    se = float(draws.std()) / math.sqrt(draws.numel())
    # 4 Monte Carlo standard errors (se is about 0.2 here; a sign error on log q
    # moves the mean by 2 H(q) + ... far more)
    assert abs(float(draws.mean()) - want) < 4 * se, (float(draws.mean()), want, se)
    # ELBO <= log evidence, with the gap KL(q || posterior) in closed form
    kl = math.log(sd / s) + (s**2 + (m - mean) ** 2) / (2 * sd**2) - 0.5
    assert math.isclose(-want, _log_evidence(model, obs["y"]) - kl, rel_tol=1e-6)


def test_single_particle_gradient_is_unbiased():
    """The mean of K=1 gradients equals the analytic ELBO gradient:
    d(-ELBO)/dm = (m - m0)/s0^2 + sum_i (m - y_i)/sigma^2,
    d(-ELBO)/ds = s/s0^2 + n s/sigma^2 - 1/s (times ds/draw = sigmoid(raw) for the
    softplus parametrisation), within 4 Monte Carlo standard errors."""
    model = NormalNormal()
    x, obs = normal_normal_data()
    y = obs["y"].tolist()
    mean, _ = model.posterior(obs["y"])
    m, s = mean + 0.7, 0.5
    guide = _guide_at(model, x, obs, m, s)
    elbo = ELBO(num_particles=1)
    grads = []
    for _ in range(1000):
        guide.zero_grad()
        elbo(model, guide, x, obs).backward()
        grads.append([float(guide.loc.grad), float(guide.scale_raw.grad)])
    g = torch.tensor(grads, dtype=torch.float64)
    raw = float(guide.scale_raw.detach())
    want_m = (m - model.m0) / model.s0**2 + sum(m - yi for yi in y) / model.sigma**2
    want_s = s / model.s0**2 + len(y) * s / model.sigma**2 - 1 / s
    want = torch.tensor([want_m, want_s / (1 + math.exp(-raw))], dtype=torch.float64)
    se = g.std(0) / math.sqrt(g.shape[0])
    assert bool(((g.mean(0) - want).abs() < 4 * se).all()), (g.mean(0), want, se)


def test_single_particle_svi_recovers_the_posterior():
    """Adam on the K=1 estimator: 1000 steps at lr 0.05, then 1000 at 0.005 and 1000 at
    0.0005 to let the stochastic iterates settle. Over seeds 0..9 the final loc lay
    within 0.075 sd of the posterior mean and the scale within 4 % of the posterior
    sd; the tolerances (0.2 sd, 10 %) are 2.5 times that spread. A guide that
    collapses or ignores the entropy term misses the sd by far more."""
    model = NormalNormal()
    x, obs = normal_normal_data()
    mean, sd = model.posterior(obs["y"])
    guide = AutoNormalGuide(model, observed_names={"y"})
    svi = SVI(model, guide, lambda p: torch.optim.Adam(p, lr=0.05), ELBO(num_particles=1))
    svi.run(x, obs, num_steps=1000)
    for lr in (0.005, 0.0005):
        for group in svi.optim.param_groups:
            group["lr"] = lr
        svi.run(x, obs, num_steps=1000)
    loc, scale = guide.site_loc_scale("mu")
    assert abs(float(loc) - mean) < 0.2 * sd, (float(loc), mean, sd)
    assert abs(float(scale) - sd) < 0.1 * sd, (float(scale), sd)
