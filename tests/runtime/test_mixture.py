"""``Mixture(weights, [F1(...), ..., FK(...)])``, an inline family: its density is
logsumexp_k(log w_k + log p_k(x)) per coordinate (checked against SciPy), its
support is the components' (which guides and MCMC unconstrain through), and its
draws follow the mixture (checked against the closed-form mean and variance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import logsumexp
from torch.distributions import constraints

from quivers.dsl import loads
from quivers.inference import MCMC, AutoNormalGuide, NUTSKernel
from quivers.runtime.errors import QvrDataError

GLOBAL = """\
object X : Real 1
program p(x) : X -> X
    sample z : Real 3 <- Mixture([0.3, 0.7], [Normal(0.0, 1.0), Normal(loc=3.0, scale=0.5)])
    observe y : X <- Normal(x, 1.0)
    return y
export p
"""

PER_ROW = """\
object X : Real 1
program p(x) : X -> X
    sample w <- Dirichlet([2.0, 3.0, 1.0])
    sample mu <- Normal(0.0, 2.0)
    observe y : X <- Mixture(w, [Normal(mu, 1.0), Normal(x, 0.5), StudentT(4.0, mu, 2.0)])
    return y
export p
"""

POSITIVE = """\
object X : Real 1
program p(x) : X -> X
    sample z <- Mixture(weights=[0.4, 0.6], components=[Gamma(2.0, 1.0), Exponential(0.5)])
    observe y : X <- Normal(z, 1.0)
    return y
export p
"""


def mixture_logpdf(v: np.ndarray, weights: list[float], parts: list) -> np.ndarray:
    """Elementwise log sum_k w_k p_k(v), from SciPy's densities."""
    terms = np.stack([np.log(w) + d.logpdf(v) for w, d in zip(weights, parts, strict=True)])
    return logsumexp(terms, axis=0)


def test_a_global_mixture_scores_each_coordinate_against_scipy():
    model = loads(GLOBAL).morphism
    x = torch.zeros(2, 1, dtype=torch.float64)
    z = torch.tensor([-1.0, 1.5, 3.2], dtype=torch.float64)
    y = torch.zeros(2, 1, dtype=torch.float64)
    got = model.log_joint(x, {"z": z, "y": y})
    parts = [stats.norm(0.0, 1.0), stats.norm(3.0, 0.5)]
    want = mixture_logpdf(z.numpy(), [0.3, 0.7], parts).sum() + stats.norm(0, 1).logpdf(0.0) * 2
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)  # numbers are float32
    site = model.trace(x).sites["z"]
    assert site.value.shape == (3,) and site.support is constraints.real


def test_per_row_mixture_with_drawn_weights_matches_scipy():
    model = loads(PER_ROW).morphism
    x = torch.tensor([[0.0], [1.0], [-2.0], [0.5]], dtype=torch.float64)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    mu = torch.tensor(0.7, dtype=torch.float64)
    y = torch.tensor([[0.3], [1.2], [-4.0], [2.0]], dtype=torch.float64)
    trace = model.trace(x, {"y": y})
    assert trace.sites["y"].log_prob.shape == (4,)
    got = model.log_joint(x, {"w": w, "mu": mu, "y": y})
    rows = [
        mixture_logpdf(
            y[i].numpy(),
            w.tolist(),
            [stats.norm(0.7, 1.0), stats.norm(x[i].item(), 0.5), stats.t(4.0, 0.7, 2.0)],
        ).sum()
        for i in range(4)
    ]
    want = (
        stats.dirichlet([2.0, 3.0, 1.0]).logpdf(w.numpy())
        + stats.norm(0.0, 2.0).logpdf(0.7)
        + sum(rows)
    )
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)  # numbers are float32


def test_mixture_draws_follow_the_mixture():
    torch.manual_seed(0)
    source = GLOBAL.replace("Real 3", "Real 20000")
    draws = loads(source).morphism.trace(torch.zeros(1, 1)).sites["z"].value
    mean, var = 0.3 * 0.0 + 0.7 * 3.0, 0.3 * 1.0 + 0.7 * (0.25 + 9.0) - 2.1**2
    se = (var / draws.numel()) ** 0.5
    assert abs(draws.mean().item() - mean) < 4 * se  # 4 standard errors
    assert abs(draws.var().item() - var) < 0.05 * var
    # about 30% of the draws come from the component around 0
    assert (
        abs(
            (draws < 1.5).double().mean().item()
            - 0.3 * stats.norm.cdf(1.5)
            - 0.7 * stats.norm(3.0, 0.5).cdf(1.5)
        )
        < 0.01
    )


def test_a_positive_mixture_has_a_positive_support_for_guides_and_mcmc():
    torch.manual_seed(0)
    model = loads(POSITIVE).morphism
    x = torch.zeros(3, 1)
    y = torch.tensor([[1.0], [2.5], [0.5]])
    assert model.trace(x, {"y": y}).sites["z"].support is constraints.positive
    guide = AutoNormalGuide(model, observed_names={"y"})
    draws = guide.sample(x, {"y": y}, num_particles=200).values["z"]
    assert draws.shape == (200,) and bool((draws > 0).all())


@pytest.mark.slow
def test_nuts_on_a_positive_mixture_matches_the_posterior_by_quadrature():
    model = loads(POSITIVE).morphism
    x = torch.zeros(3, 1)
    y = torch.tensor([[1.0], [2.5], [0.5]])
    # NUTS against the posterior by quadrature: p(z | y) ∝ mixture(z) prod N(y_i; z, 1)
    result = MCMC(NUTSKernel(), num_warmup=300, num_samples=1000, num_chains=1, seed=0).run(
        model, x, {"y": y}
    )
    assert int(result.divergence_counts.sum()) == 0
    z = result.samples["z"].reshape(-1)
    assert bool((z > 0).all())

    def unnorm(v: float) -> float:
        prior = 0.4 * stats.gamma(2.0).pdf(v) + 0.6 * stats.expon(scale=2.0).pdf(v)
        return prior * np.prod(stats.norm(v, 1.0).pdf(y.numpy()))

    norm = integrate.quad(unnorm, 0, 50)[0]
    post_mean = integrate.quad(lambda v: v * unnorm(v), 0, 50)[0] / norm
    post_sd = (integrate.quad(lambda v: v * v * unnorm(v), 0, 50)[0] / norm - post_mean**2) ** 0.5
    # 1000 correlated draws: well within 0.25 posterior sd of the exact mean
    assert abs(z.mean().item() - post_mean) < 0.25 * post_sd
    assert abs(z.std().item() - post_sd) < 0.2 * post_sd


def test_mixture_arguments_of_the_wrong_shape_are_a_data_error():
    model = loads(PER_ROW).morphism
    x = torch.zeros(4, 1)
    with pytest.raises(QvrDataError, match="site 'y'"):
        model.log_joint(
            x, {"w": torch.tensor([0.5, 0.3, 0.2]), "mu": torch.tensor(0.0), "y": torch.zeros(4, 2)}
        )
