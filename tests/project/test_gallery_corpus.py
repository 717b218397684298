"""Every corpus program checks clean, loads, samples, traces, scores its own trace
exactly, and fits: 50 SVI steps of the reference recipe give a finite, falling loss.
Conjugate programs are compared with their closed-form posteriors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from quivers.inference import ELBO, SVI, AutoNormalGuide
from quivers.semantic import check_text

from .gallery_corpus import GALLERY, setup


def test_the_corpus_is_large_enough():
    assert len(GALLERY) >= 25


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.stem)
def test_corpus_program_checks_samples_traces_and_fits(path: Path) -> None:
    assert check_text(path.read_text("utf-8")).diagnostics == []
    torch.manual_seed(0)
    model, x, hosts = setup(path)
    with torch.no_grad():
        trace = model.trace(x, dict(hosts))
        values = {**hosts, **{name: site.trace for name, site in trace.items()}}
        total = model.log_joint(x, values)
        returned = model.rsample(x, dict(hosts))
    assert returned is not None
    # the property: log_joint(x, trace(x).values) is the sum of the per-site densities
    by_site = sum(s.log_prob if s.is_global else s.log_prob.sum() for s in trace.values())
    assert total.dim() == 0 and torch.isfinite(total)
    assert torch.allclose(total, by_site, rtol=1e-5, atol=1e-4)
    observations = {**hosts, **{n: trace[n].trace for n in model.observed_names}}
    guide = AutoNormalGuide(model, observed_names=model.observed_names)
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.03)
    svi = SVI(model, guide, optim, ELBO(num_particles=4))
    losses = [svi.step(x, observations) for _ in range(50)]
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-10:]) < sum(losses[:10]), losses


def _fit(name: str, steps: int = 400):
    path = next(p for p in GALLERY if p.stem == name)
    torch.manual_seed(1)
    model, x, hosts = setup(path)
    with torch.no_grad():
        trace = model.trace(x, dict(hosts))
    observations = {**hosts, **{n: trace[n].trace for n in model.observed_names}}
    guide = AutoNormalGuide(model, observed_names=model.observed_names)
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.05)
    svi = SVI(model, guide, optim, ELBO(num_particles=8))
    for _ in range(steps):
        svi.step(x, observations)
    return guide.median(), observations


# Closed-form posterior medians and sds; the mean-field guide's median must lie within
# TOL posterior sds of the exact one (the guides are exact families here up to the
# unconstraining map, so this is the noise of 400 Adam steps at lr 0.05 on an
# 8-particle ELBO, not a bias allowance).
TOL = 0.35


def test_normal_normal_matches_its_closed_form():
    median, obs = _fit("normal_normal")
    y = obs["y"]
    precision = 1 / 4 + y.numel()
    mean, sd = y.sum().item() / precision, precision**-0.5
    assert abs(median["mu"].item() - mean) < TOL * sd


def test_beta_bernoulli_matches_its_closed_form():
    from scipy import stats

    median, obs = _fit("beta_bernoulli")
    heads = int(obs["flip"].sum())
    n = obs["flip"].numel()
    post = stats.beta(2 + heads, 2 + n - heads)
    assert abs(median["p"].item() - post.median()) < TOL * post.std()


def test_gamma_poisson_matches_its_closed_form():
    from scipy import stats

    median, obs = _fit("gamma_poisson")
    counts = obs["count"]
    post = stats.gamma(2 + counts.sum().item(), scale=1 / (1 + counts.numel()))
    assert abs(median["rate"].item() - post.median()) < TOL * post.std()


def test_beta_binomial_plate_matches_its_closed_form():
    from scipy import stats

    median, obs = _fit("beta_binomial_trials")
    s = obs["successes"].sum().item()
    post = stats.beta(1 + s, 1 + 10 * 12 - s)
    assert abs(median["p"].item() - post.median()) < TOL * post.std()
