"""Fitting models whose discrete latents a `marginalize` block sums out: NUTS (no
discrete sites are left) against quadrature of the exact posterior, and SVI
recovering a Gaussian mixture's component means. Seeds are fixed; tolerances are
stated per test."""

from __future__ import annotations

import math

import torch
from torch import distributions as D
from torch.distributions import constraints, transform_to

from quivers.dsl import loads
from quivers.inference import ELBO, MCMC, SVI, AutoNormalGuide, NUTSKernel

SHIFTED = """\
object Y : Real 1
program shifted : Y -> Y
    sample mu <- Normal(0.0, 2.0)
    marginalize c <- Bernoulli(0.3)
        let m = mu + 3.0 * c
        observe y : Y <- Normal(m, 1.0)
    return y
export shifted
"""


def _quadrature(y: torch.Tensor) -> tuple[float, float]:
    """Posterior mean and sd of mu by a fine grid: p(mu | y) is proportional to
    N(mu; 0, 2) prod_n [0.7 N(y_n; mu, 1) + 0.3 N(y_n; mu + 3, 1)]."""
    grid = torch.linspace(-6.0, 8.0, 20001, dtype=torch.float64)
    yy = y.double().flatten().unsqueeze(-1)
    mix = torch.logaddexp(
        math.log(0.7) + D.Normal(grid, 1.0).log_prob(yy),
        math.log(0.3) + D.Normal(grid + 3.0, 1.0).log_prob(yy),
    ).sum(0)
    log_post = D.Normal(0.0, 2.0).log_prob(grid) + mix
    w = torch.softmax(log_post, 0)
    mean = float((w * grid).sum())
    return mean, math.sqrt(float((w * (grid - mean) ** 2).sum()))


def test_nuts_on_a_marginalized_mixture_matches_quadrature() -> None:
    g = torch.Generator().manual_seed(1)
    n = 25
    shift = (torch.rand(n, 1, generator=g) < 0.3).float() * 3.0
    y = 1.2 + shift + torch.randn(n, 1, generator=g)
    model = loads(SHIFTED).morphism
    assert model.latent_names == ("mu",)  # the indicator is no site: nothing discrete
    result = MCMC(NUTSKernel(), num_warmup=200, num_samples=600, num_chains=1, seed=0).run(
        model, torch.zeros(n, 1), {"y": y}
    )
    assert int(result.divergence_counts.sum()) == 0
    assert float(result.acceptance_rates.min()) > 0.6
    mu = result.samples["mu"].flatten()
    mean, sd = _quadrature(y)
    # 600 draws of a well-mixed 1-d chain (ESS of a few hundred): the mean's standard
    # error is about sd/sqrt(300) = 0.06 sd; 0.3 sd is five of them
    assert abs(float(mu.mean()) - mean) < 0.3 * sd, (float(mu.mean()), mean, sd)
    assert abs(float(mu.std()) - sd) < 0.2 * sd, (float(mu.std()), sd)


MIXTURE = """\
object K : FinSet 3
object Y : Real 1
morphism weights : Y -> K [role=kernel, param_source=linear] ~ Categorical
program gmm(x) : Y -> Y
    sample mu : K <- Normal(0.0, 10.0)
    sample s <- HalfNormal(2.0)
    marginalize c <- weights(x) [reduction=logsumexp]
        let m = mu[c]
        observe y : Y <- Normal(m, s)
    return y
export gmm
"""


def test_svi_recovers_the_component_means_of_a_marginalized_mixture() -> None:
    torch.manual_seed(0)
    means, weights, sd = torch.tensor([-5.0, 0.0, 4.0]), torch.tensor([0.3, 0.4, 0.3]), 0.8
    n = 600
    z = torch.multinomial(weights, n, replacement=True)
    y = (means[z] + sd * torch.randn(n)).unsqueeze(-1)
    model = loads(MIXTURE).morphism
    # spread initial means break the components' symmetry (every mixture fit needs it)
    guide = AutoNormalGuide(
        model, observed_names={"y"}, init_loc={"mu": torch.tensor([[-2.0], [0.0], [2.0]])}
    )
    svi = SVI(model, guide, lambda ps: torch.optim.Adam(ps, lr=0.1), ELBO(num_particles=1))
    x = torch.zeros(n, 1)
    losses = svi.run(x, {"y": y}, num_steps=400)
    for group in svi.optim.param_groups:
        group["lr"] = 0.01
    losses += svi.run(x, {"y": y}, num_steps=300)
    assert sum(losses[-50:]) < sum(losses[:50])
    loc, _ = guide.site_loc_scale("mu")
    found = loc.flatten().sort().values
    # each mean's posterior sd is sd/sqrt(n_k), under 0.06 here: 0.15 covers SVI's noise
    assert torch.allclose(found, means, atol=0.15), found
    s_loc, _ = guide.site_loc_scale("s")
    s_fit = float(transform_to(constraints.positive)(s_loc))
    assert abs(s_fit - sd) < 0.1, s_fit
