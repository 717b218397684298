"""A fit through step options against its closed-form posterior: one mean per group
drawn with `[iid_over=K]`, each row observed through `[via=g]`. With known scales the
posterior of each mean is Normal in closed form (conjugacy), so a mean-field Normal
guide can reach it exactly; SVI must recover its means and standard deviations."""

from __future__ import annotations

import math

import pytest
import torch

from quivers.inference import ELBO, SVI, AutoNormalGuide
from tests.compiler.helpers import load

SOURCE = """\
object K : FinSet 3
object Rows : FinSet 30
program groups : Rows -> Rows
    sample mu <- Normal(0.0, 2.0) [iid_over=K]
    observe y <- Normal(mu, 0.5) [via=g]
    return mu
export groups
"""
PRIOR_SD, NOISE_SD = 2.0, 0.5


@pytest.mark.slow
def test_svi_recovers_the_conjugate_posterior():
    torch.manual_seed(0)
    g = torch.arange(30) % 3
    g[:6] = 0  # unequal group sizes: 12, 9, 9
    truth = torch.tensor([-1.0, 0.5, 2.0])
    y = (truth[g] + NOISE_SD * torch.randn(30)).unsqueeze(-1)
    model = load(SOURCE).morphism
    guide = AutoNormalGuide(model, observed_names={"y"})
    optim = torch.optim.Adam(list(guide.parameters()), lr=0.05)
    svi = SVI(model, guide, optim, ELBO(num_particles=8))
    x = torch.zeros(30, dtype=torch.long)
    obs = {"y": y, "g": g}
    for step in range(2000):
        if step == 1200:  # a smaller step to settle the noisy gradient's last iterate
            for group in optim.param_groups:
                group["lr"] = 0.005
        svi.step(x, obs)
    locs = guide.median()["mu"].reshape(3)  # mu is the one latent: the layout is its (3, 1)
    scales = guide.scale.detach().reshape(3)
    # closed form: precision 1/s0^2 + n_k/s^2, mean (sum_k y / s^2) / precision
    for k in range(3):
        n = int((g == k).sum())
        precision = 1 / PRIOR_SD**2 + n / NOISE_SD**2
        mean = float(y[g == k].sum()) / NOISE_SD**2 / precision
        assert float(locs[k]) == pytest.approx(mean, abs=0.03)
        assert float(scales[k]) == pytest.approx(1 / math.sqrt(precision), rel=0.15)
