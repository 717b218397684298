"""Hand-written models that follow the model protocol (docs/dev/model-protocol.md).

They stand in for compiled QVR programs in the inference tests and benchmarks: each
is an ``nn.Module`` with ``trace``, ``log_joint``, ``rsample``, ``observed_names`` and
``latent_names``. Closed-form posteriors are given where they exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import distributions as D
from torch import nn

from quivers.inference.diagnostics import ess, ess_basic
from quivers.runtime.trace import Site

Env = dict[str, Any]


@dataclass
class Step:
    name: str
    make: Callable[[Any, Env], D.Distribution]  # (x, values so far) -> distribution
    observed: bool = False
    is_global: bool = False


class StepModel(nn.Module):
    """A straight-line program of ``sample``/``observe`` steps."""

    def steps(self) -> list[Step]:
        raise NotImplementedError

    @property
    def observed_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.steps() if s.observed)

    @property
    def latent_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps() if not s.observed)

    def trace(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> dict:
        given = dict(observations or {})
        env: Env = dict(given)
        sites: dict[str, Site] = {}
        for step in self.steps():
            dist = step.make(x, env)
            if step.name in given:
                value = given[step.name]
            elif dist.has_rsample:
                value = dist.rsample()
            else:
                value = dist.sample()
            lp = dist.log_prob(value)
            lp = lp.sum() if step.is_global else lp.reshape(lp.shape[0], -1).sum(-1)
            env[step.name] = value
            sites[step.name] = Site(
                step.name, value, value, lp, dist.support, step.observed, step.is_global
            )
        return sites

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        missing = [s.name for s in self.steps() if s.name not in values]
        if missing:
            raise KeyError(f"log_joint needs every site; missing {missing}")
        sites = self.trace(x, values, **run)
        return sum((s.log_prob.sum() for s in sites.values()), torch.zeros(()))

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        sites = self.trace(x, observations, **run)
        return list(sites.values())[-1].value

    def log_joint_rows(
        self, x: Any, values: Mapping[str, Any], **run: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-row log density of the local sites, global sites' log density)."""
        sites = self.trace(x, values, **run)
        rows = torch.zeros(x.shape[0])
        glob = torch.zeros(())
        for s in sites.values():
            if s.is_global:
                glob = glob + s.log_prob
            else:
                rows = rows + s.log_prob
        return rows, glob


class NormalNormal(StepModel):
    """mu ~ Normal(m0, s0); y_i ~ Normal(mu, sigma), i = 1..len(x)."""

    def __init__(self, m0: float = 0.0, s0: float = 2.0, sigma: float = 1.0) -> None:
        super().__init__()
        self.m0, self.s0, self.sigma = m0, s0, sigma

    def steps(self) -> list[Step]:
        return [
            Step(
                "mu",
                lambda x, e: D.Normal(torch.tensor(self.m0), torch.tensor(self.s0)),
                is_global=True,
            ),
            Step("y", lambda x, e: D.Normal(e["mu"].expand(x.shape[0]), self.sigma), observed=True),
        ]

    def posterior(self, y: torch.Tensor) -> tuple[float, float]:
        prec = 1 / self.s0**2 + y.numel() / self.sigma**2
        mean = (self.m0 / self.s0**2 + float(y.sum()) / self.sigma**2) / prec
        return mean, math.sqrt(1 / prec)


class HierarchicalNormal(StepModel):
    """mu ~ Normal(0, s0); z_i ~ Normal(mu, tau); y_i ~ Normal(z_i, sigma): one local
    latent per row, one global."""

    def __init__(self, s0: float = 3.0, tau: float = 1.0, sigma: float = 0.5) -> None:
        super().__init__()
        self.s0, self.tau, self.sigma = s0, tau, sigma

    def steps(self) -> list[Step]:
        return [
            Step("mu", lambda x, e: D.Normal(torch.tensor(0.0), self.s0), is_global=True),
            Step("z", lambda x, e: D.Normal(e["mu"].expand(x.shape[0]), self.tau)),
            Step("y", lambda x, e: D.Normal(e["z"], self.sigma), observed=True),
        ]

    def local_posterior(self, y: torch.Tensor, mu: float) -> tuple[torch.Tensor, float]:
        """p(z_i | y_i, mu): its mean per row and its sd."""
        prec = 1 / self.tau**2 + 1 / self.sigma**2
        return (mu / self.tau**2 + y / self.sigma**2) / prec, math.sqrt(1 / prec)

    def expected_elbo(
        self, y: torch.Tensor, mu: float, loc: torch.Tensor, scale: torch.Tensor
    ) -> float:
        """E_q[log p - log q] for q = delta(mu) x prod_i Normal(z_i; loc_i, scale_i)."""
        t2, s2 = self.tau**2, self.sigma**2
        log2pi = math.log(2 * math.pi)
        prior = -0.5 * log2pi - math.log(self.s0) - 0.5 * mu**2 / self.s0**2
        rows = (
            -0.5 * log2pi
            - math.log(self.tau)
            - ((loc - mu) ** 2 + scale**2) / (2 * t2)
            - 0.5 * log2pi
            - math.log(self.sigma)
            - ((y - loc) ** 2 + scale**2) / (2 * s2)
            + 0.5 * log2pi
            + scale.log()
            + 0.5
        )
        return prior + float(rows.sum())


class BetaBernoulli(StepModel):
    """p ~ Beta(a, b); y_i ~ Bernoulli(p)."""

    def __init__(self, a: float = 2.0, b: float = 3.0) -> None:
        super().__init__()
        self.a, self.b = a, b

    def steps(self) -> list[Step]:
        return [
            Step(
                "p", lambda x, e: D.Beta(torch.tensor(self.a), torch.tensor(self.b)), is_global=True
            ),
            Step("y", lambda x, e: D.Bernoulli(probs=e["p"].expand(x.shape[0])), observed=True),
        ]

    def posterior(self, y: torch.Tensor) -> D.Beta:
        k = float(y.sum())
        return D.Beta(torch.tensor(self.a + k), torch.tensor(self.b + y.numel() - k))


class GammaPoisson(StepModel):
    """rate ~ Gamma(a, b); y_i ~ Poisson(rate)."""

    def __init__(self, a: float = 3.0, b: float = 1.0) -> None:
        super().__init__()
        self.a, self.b = a, b

    def steps(self) -> list[Step]:
        return [
            Step(
                "rate",
                lambda x, e: D.Gamma(torch.tensor(self.a), torch.tensor(self.b)),
                is_global=True,
            ),
            Step("y", lambda x, e: D.Poisson(e["rate"].expand(x.shape[0])), observed=True),
        ]

    def posterior(self, y: torch.Tensor) -> D.Gamma:
        return D.Gamma(torch.tensor(self.a + float(y.sum())), torch.tensor(self.b + y.numel()))


class StandardNormal(StepModel):
    """z ~ Normal(0, I_dim): one global site, nothing observed."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def steps(self) -> list[Step]:
        return [
            Step(
                "z",
                lambda x, e: D.Independent(D.Normal(torch.zeros(self.dim), 1.0), 1),
                is_global=True,
            )
        ]


class CorrelatedGaussian(StepModel):
    """z ~ MultivariateNormal(mean, cov): one global site, nothing observed."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale_tril", torch.linalg.cholesky(cov))

    def steps(self) -> list[Step]:
        return [
            Step(
                "z",
                lambda x, e: D.MultivariateNormal(self.mean, scale_tril=self.scale_tril),
                is_global=True,
            )
        ]


def correlated_2d() -> CorrelatedGaussian:
    cov = torch.tensor([[1.0, 0.8 * 1.0 * 2.0], [0.8 * 1.0 * 2.0, 4.0]])
    return CorrelatedGaussian(torch.tensor([1.0, -2.0]), cov)


def correlated_100d(dim: int = 100, rho: float = 0.9, seed: int = 0) -> CorrelatedGaussian:
    """Covariance D R D with R_ij = rho^|i-j| and scales D log-uniform in [0.5, 2]."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(dim, dtype=torch.float64)
    corr = rho ** (idx[:, None] - idx[None, :]).abs()
    scales = torch.exp(
        torch.empty(dim, dtype=torch.float64).uniform_(math.log(0.5), math.log(2.0), generator=g)
    )
    cov = (scales[:, None] * corr * scales[None, :]).float()
    return CorrelatedGaussian(torch.zeros(dim), cov)


class LinearRegression(StepModel):
    """slope, intercept ~ Normal(0, s); y_i ~ Normal(slope x_i + intercept, sigma)."""

    def __init__(self, prior_scale: float = 3.0, sigma: float = 0.5) -> None:
        super().__init__()
        self.prior_scale, self.sigma = prior_scale, sigma

    def steps(self) -> list[Step]:
        s = self.prior_scale
        return [
            Step(
                "slope", lambda x, e: D.Normal(torch.tensor(0.0), torch.tensor(s)), is_global=True
            ),
            Step(
                "intercept",
                lambda x, e: D.Normal(torch.tensor(0.0), torch.tensor(s)),
                is_global=True,
            ),
            Step(
                "y",
                lambda x, e: D.Normal(e["slope"] * x + e["intercept"], self.sigma),
                observed=True,
            ),
        ]

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of (slope, intercept)."""
        X = torch.stack([x, torch.ones_like(x)], dim=1).double()
        prec = X.T @ X / self.sigma**2 + torch.eye(2, dtype=torch.float64) / self.prior_scale**2
        cov = torch.linalg.inv(prec)
        mean = cov @ (X.T @ y.double()) / self.sigma**2
        return mean, cov


class TrajectoryModel(nn.Module):
    """Learnable parameters plus a local latent trajectory (a tiny ``scan``).

    For token ids x of shape (B, T): e_t = embed[x_t];
    h_t ~ Normal(tanh(W h_{t-1} + proj(e_t)), 0.1) with h_0 = 0, the trace of site
    ``h`` being the whole trajectory (B, T, H); y ~ Normal(readout(h_T) + aux(h_T),
    0.5) observed, where ``aux`` is the *same* module as ``readout`` (a shared
    parameter that must be lifted once).
    """

    observed_names = frozenset({"y"})
    latent_names = ("h",)

    def __init__(self, vocab: int = 5, emb: int = 3, hidden: int = 4, scale: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(vocab, emb) * 0.5)
        self.W = nn.Parameter(torch.randn(hidden, hidden) * 0.3)
        self.proj = nn.Linear(emb, hidden)
        self.readout = nn.Linear(hidden, 1)
        self.aux = self.readout  # shared submodule
        self.hidden, self.scale = hidden, scale

    def _h_dist_terms(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Per-row log density of a given trajectory h (B, T, H)."""
        e = self.embed[x]  # (B, T, E)
        prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        loc = torch.tanh(prev @ self.W.T + self.proj(e))
        return D.Normal(loc, self.scale).log_prob(h).sum((-1, -2))

    def _sample_h(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed[x]
        h = torch.zeros(x.shape[0], self.hidden, dtype=self.W.dtype)
        states = []
        for t in range(x.shape[1]):
            loc = torch.tanh(h @ self.W.T + self.proj(e[:, t]))
            h = loc + self.scale * torch.randn_like(loc)
            states.append(h)
        return torch.stack(states, dim=1)

    def _y_dist(self, h_last: torch.Tensor) -> D.Normal:
        return D.Normal((self.readout(h_last) + self.aux(h_last)).squeeze(-1), 0.5)

    def trace(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> dict:
        given = dict(observations or {})
        h = given["h"] if "h" in given else self._sample_h(x)
        h_site = Site("h", h, h[:, -1], self._h_dist_terms(x, h), D.constraints.real, False, False)
        yd = self._y_dist(h[:, -1])
        y = given["y"] if "y" in given else yd.sample()
        y_site = Site("y", y, y, yd.log_prob(y), yd.support, True, False)
        return {"h": h_site, "y": y_site}

    def log_joint(self, x: torch.Tensor, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        sites = self.trace(x, values)
        return sites["h"].log_prob.sum() + sites["y"].log_prob.sum()

    def rsample(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> torch.Tensor:
        return self.trace(x, observations)["y"].value


def normal_normal_data(n: int = 20) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Observations for :class:`NormalNormal`: n draws around 1.5, fixed seed."""
    x = torch.zeros(n)
    y = torch.randn(n, generator=torch.Generator().manual_seed(3)) + 1.5
    return x, {"y": y}


def assert_short_nuts_run_worked(result: Any) -> None:
    """What a short NUTS run of the seed snippet's settings must show.

    Ten warmup iterations adapt the step size by dual averaging towards acceptance
    0.8 (here 0.89 on the reference program): a step size that ran away accepts
    nothing, so acceptance above 0.6 is required; at the small steps it settles on
    the energy error stays tiny, so no transition diverges; and the chain moves:
    every draw differs from the one before it.
    """
    assert 0.6 < float(result.acceptance_rates.mean()) <= 1.0, result.acceptance_rates
    assert int(result.divergence_counts.sum()) == 0, result.divergence_counts
    u = result.unconstrained[0]
    assert bool(((u[1:] - u[:-1]).abs().amax(dim=1) > 0).all())


def monte_carlo_means(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, Monte Carlo standard error, ESS) of each column of ``values``
    (``(chains, draws, K)``, or ``(chains, draws)`` for one column), in float64.

    The standard error of the mean of f is ``sd(f) / sqrt(ESS(f))`` with ESS the run's
    own effective sample size of f (Geyer 1992; Vehtari, Gelman, Simpson, Carpenter &
    Buerkner 2021), so tolerances built on it follow the run instead of being numbers
    tuned to one seed. ESS is the smaller of the bulk ESS
    (``quivers.inference.diagnostics.ess``, on ranks) and the ESS of the raw values
    (``ess_basic``): on a skewed f such as a squared deviation the ranks can be
    optimistic (seen: 324 against 277 on 600 NUTS draws).
    """
    f = values.detach().to(torch.float64)
    if f.dim() == 2:
        f = f.unsqueeze(-1)
    eff = torch.minimum(ess(f), ess_basic(f))
    flat = f.reshape(-1, f.shape[-1])
    return flat.mean(0), flat.std(0) / eff.sqrt(), eff


def assert_within_monte_carlo_error(
    values: torch.Tensor,
    expected: Any,
    *,
    min_ess: float,
    z: float = 4.0,
    what: str = "",
) -> torch.Tensor:
    """Each column's mean within ``z`` Monte Carlo standard errors
    (:func:`monte_carlo_means`) of its exact value ``expected``. A sampler that
    mixes badly must not pass by having huge error bars: every ESS must be at least
    ``min_ess``. Returns the errors in standard errors (for messages and seed scans).
    """
    mean, mcse, eff = monte_carlo_means(values)
    want = torch.as_tensor(expected, dtype=torch.float64).reshape(-1)
    err = (mean - want) / mcse
    assert bool((eff >= min_ess).all()), f"{what}: ESS {eff.tolist()} below {min_ess}"
    assert bool((err.abs() < z).all()), (
        f"{what}: means {mean.tolist()} against {want.tolist()} are "
        f"{err.tolist()} standard errors off (ESS {eff.tolist()})"
    )
    return err


def assert_posterior_moments(
    draws: torch.Tensor,
    mean: Any,
    cov: Any,
    *,
    min_ess: float,
    z: float = 4.0,
    covariances: bool = False,
) -> torch.Tensor:
    """Posterior means and variances (and, with ``covariances``, every covariance)
    of ``draws`` (``(chains, draws, P)``) within ``z`` Monte Carlo standard errors of
    the exact ``mean`` (P) and ``cov`` (P x P, or the P variances).

    Centred at the exact mean, a variance is the mean of ``(theta_i - mu_i)^2`` and a
    covariance that of ``(theta_i - mu_i)(theta_j - mu_j)``, so all are checked by
    :func:`assert_within_monte_carlo_error`; the variance's standard error is then
    ``sd((theta - mu)^2) / sqrt(ESS((theta - mu)^2))``, which for a Gaussian is
    ``var * sqrt(2 / ESS)`` (``(theta - mu)^2 / var`` is chi-squared with one degree
    of freedom, variance 2). This is the usual Monte Carlo standard error of an
    expectation, the function's sd over the square root of its own ESS (Flegal,
    Haran & Jones 2008, "Markov chain Monte Carlo: can we trust the third significant
    figure?", Statistical Science 23(2); Vehtari et al. 2021 for the ESS).
    """
    x = draws.detach().to(torch.float64)
    if x.dim() == 2:
        x = x.unsqueeze(-1)
    mu = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
    sigma = torch.as_tensor(cov, dtype=torch.float64)
    if sigma.dim() < 2:
        sigma = torch.diag(sigma.reshape(-1))
    centred = x - mu
    errs = [assert_within_monte_carlo_error(x, mu, min_ess=min_ess, z=z, what="means")]
    errs.append(
        assert_within_monte_carlo_error(
            centred**2, sigma.diagonal(), min_ess=min_ess, z=z, what="variances"
        )
    )
    if covariances:
        i, j = torch.triu_indices(len(mu), len(mu), offset=1)
        products = centred[..., i] * centred[..., j]
        errs.append(
            assert_within_monte_carlo_error(
                products, sigma[i, j], min_ess=min_ess, z=z, what="covariances"
            )
        )
    return torch.cat(errs)


# ------------------------------------------------------------- standard posteriors

#: Rubin (1981): the estimated coaching effects and their standard errors in eight schools
EIGHT_SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
EIGHT_SCHOOLS_SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


class EightSchools(StepModel):
    """mu ~ Normal(0, 5), tau ~ HalfCauchy(5); centred: theta_j ~ Normal(mu, tau),
    non-centred: theta_j = mu + tau eta_j with eta_j ~ Normal(0, 1); y_j ~
    Normal(theta_j, sigma_j). ``x`` is sigma (one row per school)."""

    def __init__(self, centred: bool) -> None:
        super().__init__()
        self.centred = centred

    def steps(self) -> list[Step]:
        zero, five = torch.tensor(0.0), torch.tensor(5.0)
        latent = (
            Step("theta", lambda x, e: D.Normal(e["mu"].expand(8), e["tau"]), is_global=True)
            if self.centred
            else Step("eta", lambda x, e: D.Normal(torch.zeros(8), 1.0), is_global=True)
        )

        def effect(e: Env) -> torch.Tensor:
            return e["theta"] if self.centred else e["mu"] + e["tau"] * e["eta"]

        return [
            Step("mu", lambda x, e: D.Normal(zero, five), is_global=True),
            Step("tau", lambda x, e: D.HalfCauchy(five), is_global=True),
            latent,
            Step("y", lambda x, e: D.Normal(effect(e), x), observed=True),
        ]


def eight_schools_data() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return torch.tensor(EIGHT_SCHOOLS_SIGMA), {"y": torch.tensor(EIGHT_SCHOOLS_Y)}


class NealsFunnel(StepModel):
    """Neal (2003): v ~ Normal(0, 3), z_k ~ Normal(0, exp(v / 2)), k = 1..dim-1;
    nothing observed, so the posterior is this prior (v has mean 0 and sd 3)."""

    def __init__(self, dim: int = 10) -> None:
        super().__init__()
        self.dim = dim

    def steps(self) -> list[Step]:
        k = self.dim - 1
        return [
            Step("v", lambda x, e: D.Normal(torch.tensor(0.0), torch.tensor(3.0)), is_global=True),
            Step(
                "z",
                lambda x, e: D.Normal(torch.zeros(k), torch.exp(e["v"] / 2)),
                is_global=True,
            ),
        ]


class LogisticRegression(StepModel):
    """w ~ Normal(0, prior_scale) per feature, b ~ Normal(0, prior_scale);
    y_i ~ Bernoulli(logits = x_i . w + b). ``x`` is (N, P)."""

    def __init__(self, num_features: int, prior_scale: float = 1.0) -> None:
        super().__init__()
        self.p, self.prior_scale = num_features, prior_scale

    def steps(self) -> list[Step]:
        s = self.prior_scale
        return [
            Step("w", lambda x, e: D.Normal(torch.zeros(self.p), s), is_global=True),
            Step("b", lambda x, e: D.Normal(torch.tensor(0.0), s), is_global=True),
            Step(
                "y",
                lambda x, e: D.Bernoulli(logits=x @ e["w"] + e["b"]),
                observed=True,
            ),
        ]


def breast_cancer_data() -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
    """scikit-learn's Wisconsin breast cancer set (569 x 30, shipped with the
    package), features standardised; None without scikit-learn."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        return None
    data = load_breast_cancer()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x, {"y": torch.tensor(data.target, dtype=torch.float32)}
