"""Inference on the compiled reference program, following the seed snippets of the
reference documentation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from inference_models import assert_short_nuts_run_worked

from quivers.dsl import load
from quivers.inference import (
    ELBO,
    MCMC,
    SVI,
    AutoNormalGuide,
    NUTSKernel,
    Predictive,
    bayesian_lift_parameters,
)

SOURCE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr"


def reference(seed: int = 0):
    torch.manual_seed(seed)
    model = load(str(SOURCE)).morphism
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    prompts = torch.randint(0, 256, (4, 8))
    with torch.no_grad():
        targets = model.rsample(prompts)
    return model, prompts, {"next_token": targets}


def test_svi_seed_snippet_flow():
    model, x, obs = reference()
    guide = AutoNormalGuide(model, observed_names={"next_token"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=5e-2)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    losses = [svi.step(x, obs) for _ in range(31)]
    assert all(math.isfinite(v) for v in losses)
    assert guide.loc.shape == (4 * 8 * 128,)
    assert len(optim.param_groups) == 2
    pred = Predictive(model, guide, num_samples=3)(x, obs)
    assert pred["next_token"].shape == (3, 4) and pred["h"].shape == (3, 4, 8, 128)


def test_nuts_seed_snippet_flow():
    model, x, obs = reference()
    h_shape = tuple(model._step_h.rsample(x).shape)
    lifted, lx, lobs = bayesian_lift_parameters(
        model, x, obs, prior_scale=1.0, additional_latents={"h": h_shape}
    )
    n_params = sum(p.numel() for p in model.parameters())
    kernel = NUTSKernel(step_size=0.005, max_tree_depth=3, target_accept=0.8)
    result = MCMC(kernel, num_warmup=10, num_samples=10, num_chains=1, seed=0).run(lifted, lx, lobs)
    assert result.unconstrained.shape == (1, 10, n_params + 4 * 8 * 128)
    assert result.divergence_counts.shape == (1,)
    assert_short_nuts_run_worked(result)
    assert "_step_h.parts.0.weight" in result.summary()


@pytest.mark.slow
def test_svi_on_reference_program_decreases_the_loss():
    model, x, obs = reference()
    guide = AutoNormalGuide(model, observed_names={"next_token"})
    svi = SVI(model, guide, lambda ps: torch.optim.Adam(ps, lr=1e-2), ELBO(num_particles=4))
    losses = svi.run(x, obs, num_steps=400)
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:20]) / 20
