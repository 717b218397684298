"""bayesian_lift_parameters: exact lifted density, shared parameters, errors, and
inference on the lifted model."""

from __future__ import annotations

import math

import pytest
import torch
from inference_models import TrajectoryModel, assert_short_nuts_run_worked
from torch import distributions as D

from quivers.inference import (
    ELBO,
    MCMC,
    SVI,
    AutoNormalGuide,
    NUTSKernel,
    Predictive,
    bayesian_lift_parameters,
)

PARAMS = ("embed", "W", "proj.weight", "proj.bias", "readout.weight", "readout.bias")


def setup(dtype=torch.float32, batch=3, length=6):
    model = TrajectoryModel().to(dtype)
    x = torch.randint(0, 5, (batch, length))
    with torch.no_grad():
        y = model.rsample(x)
    return model, x, {"y": y}


def hand_log_density(theta, h, x, y, prior_scale):
    """log p(theta) + log p(h | x, theta) + log p(y | h_T, theta), written out."""
    prior = sum(D.Normal(0.0, prior_scale).log_prob(t).sum() for t in theta.values())
    e = theta["embed"][x]
    prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
    pre = prev @ theta["W"].T + e @ theta["proj.weight"].T + theta["proj.bias"]
    log_h = D.Normal(torch.tanh(pre), 0.1).log_prob(h).sum()
    read = h[:, -1] @ theta["readout.weight"].T + theta["readout.bias"]
    log_y = D.Normal(2.0 * read.squeeze(-1), 0.5).log_prob(y).sum()  # readout and aux: shared
    return prior + log_h + log_y


def test_lifted_density_is_exact():
    model, x, obs = setup(torch.float64)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lifted, lx, lobs = bayesian_lift_parameters(
        model, x, obs, prior_scale=0.7, additional_latents={"h": (3, 6, 4)}
    )
    assert lifted.latent_names == PARAMS + ("h",)  # the shared readout/aux appears once
    assert lifted.observed_names == frozenset({"y"})
    assert list(lifted.parameters()) == []
    assert lx is x and set(lobs) == {"y"}
    g = torch.Generator().manual_seed(4)
    theta = {
        n: torch.randn(p.shape, generator=g, dtype=torch.float64).requires_grad_(True)
        for n, p in model.named_parameters()
    }
    h = 0.5 * torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    got = lifted.log_joint(lx, {**theta, "h": h, **lobs})
    want = hand_log_density(theta, h, x, obs["y"], 0.7)
    assert abs(got.item() - want.item()) < 1e-5
    # gradients reach theta and agree with the hand-written density
    g_got = torch.autograd.grad(got, list(theta.values()))
    g_want = torch.autograd.grad(want, list(theta.values()))
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # the model's own parameters are untouched
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])
    # the trace agrees with log_joint site by site
    sites = lifted.trace(lx, {**theta, "h": h, **lobs})
    assert list(sites) == list(PARAMS) + ["h", "y"]
    total = sum(s.log_prob.sum().item() for s in sites.values())
    assert abs(total - want.item()) < 1e-5
    assert sites["embed"].is_global and not sites["h"].is_global


def test_lift_errors():
    model, x, obs = setup()
    with pytest.raises(ValueError, match="'h' is neither observed nor lifted"):
        bayesian_lift_parameters(model, x, obs)
    with pytest.raises(ValueError, match=r"has shape \(3, 5, 4\).*\(3, 6, 4\)"):
        bayesian_lift_parameters(model, x, obs, additional_latents={"h": (3, 5, 4)})
    with pytest.raises(ValueError, match="not sites"):
        bayesian_lift_parameters(model, x, obs, additional_latents={"h": None, "g": (1,)})
    with pytest.raises(ValueError, match="observed"):
        bayesian_lift_parameters(model, x, obs, additional_latents={"h": None, "y": (3,)})
    # h given as data instead: then only the parameters are lifted
    with torch.no_grad():
        h = model.trace(x)["h"].trace
    lifted, _, lobs = bayesian_lift_parameters(model, x, {**obs, "h": h})
    assert lifted.latent_names == PARAMS and set(lobs) == {"y", "h"}


def test_nuts_on_lifted_model_like_the_seed_snippet():
    model, x, obs = setup()
    lifted, lx, lobs = bayesian_lift_parameters(
        model, x, obs, prior_scale=1.0, additional_latents={"h": (3, 6, 4)}
    )
    kernel = NUTSKernel(step_size=0.005, max_tree_depth=3, target_accept=0.8)
    result = MCMC(kernel, num_warmup=10, num_samples=10, num_chains=1, seed=0).run(lifted, lx, lobs)
    assert result.samples["W"].shape == (1, 10, 4, 4)
    assert result.samples["h"].shape == (1, 10, 3, 6, 4)
    assert result.acceptance_rates.shape == (1,) and result.divergence_counts.shape == (1,)
    assert 0.0 <= float(result.acceptance_rates.mean()) <= 1.0
    assert_short_nuts_run_worked(result)
    assert "readout.weight" in result.summary()
    pred = Predictive(lifted, result, num_samples=4)(lx)
    assert pred["y"].shape == (4, 3)


def test_svi_on_lifted_model():
    model, x, obs = setup()
    lifted, lx, lobs = bayesian_lift_parameters(model, x, obs, additional_latents={"h": None})
    guide = AutoNormalGuide(lifted, observed_names={"y"})
    # the lifted model has no parameters and the guide none yet: torch refuses an
    # optimiser over an empty list, so pass a factory (called on the first step)
    svi = SVI(lifted, guide, lambda ps: torch.optim.Adam(ps, lr=0.02), ELBO(num_particles=2))
    losses = svi.run(lx, lobs, num_steps=60)
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-10:]) < sum(losses[:10])
