"""Independent reference posteriors for the gallery's standard models (NumPy and SciPy
in float64, no torch and no quivers), which the NUTS tests are checked against.

- Eight schools: mu is Gaussian given tau and y, so integrating it out leaves a
  one-dimensional density of tau, whose moments (and those of mu) are quadratures.
- Logistic regression: the Laplace approximation (Newton's method to the mode, the
  Hessian there), then self-normalised importance sampling with a multivariate
  Student-t proposal centred at the mode with the Laplace covariance, which corrects
  the skew the Laplace approximation misses (Gelman et al., BDA3, section 10.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate

EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


@dataclass(frozen=True)
class Moments:
    mean: float
    sd: float


def eight_schools_moments(mu_scale: float = 5.0, tau_scale: float = 5.0) -> dict[str, Moments]:
    """Posterior mean and sd of mu and tau under mu ~ N(0, mu_scale), tau ~
    HalfCauchy(tau_scale), y_j ~ N(mu, sigma_j^2 + tau^2) (theta integrated out).

    Given tau, mu | tau, y is N(m(tau), 1 / P(tau)) with P = 1 / mu_scale^2 +
    sum_j 1 / v_j, m = sum_j (y_j / v_j) / P, v_j = sigma_j^2 + tau^2, and the
    marginal density of tau is p(tau) N(y; 0, V + mu_scale^2 11^T), computed here in
    that conditional form (BDA3 section 5.4, with a proper prior on mu).
    """
    y, s2 = EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SIGMA**2

    def conditional(tau: float) -> tuple[float, float, float]:
        v = s2 + tau**2
        precision = mu_scale**-2 + float(np.sum(1.0 / v))
        m = float(np.sum(y / v)) / precision
        log_marginal = -0.5 * (
            float(np.sum(np.log(v))) + math.log(mu_scale**2 * precision)
            + float(np.sum(y**2 / v)) - m**2 * precision
        )  # fmt: skip
        log_prior = math.log(2.0 / (math.pi * tau_scale)) - math.log1p((tau / tau_scale) ** 2)
        return math.exp(log_marginal + log_prior), m, 1.0 / precision

    def expect(f) -> float:  # noqa: ANN001
        return integrate.quad(lambda t: f(t, *conditional(t)), 0.0, math.inf, limit=400)[0]

    z = expect(lambda t, w, m, var: w)
    tau1 = expect(lambda t, w, m, var: t * w) / z
    tau2 = expect(lambda t, w, m, var: t * t * w) / z
    mu1 = expect(lambda t, w, m, var: m * w) / z
    mu2 = expect(lambda t, w, m, var: (var + m * m) * w) / z
    return {
        "mu": Moments(mu1, math.sqrt(mu2 - mu1**2)),
        "tau": Moments(tau1, math.sqrt(tau2 - tau1**2)),
    }


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's copy of the Wisconsin diagnostic breast cancer data: features
    standardised column by column (population sd), y = 1 for benign."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    return x, data.target.astype(np.float64)


@dataclass(frozen=True)
class LogisticPosterior:
    """The posterior of (alpha, beta_1..beta_P), coordinates in that order."""

    mode: np.ndarray
    laplace_cov: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    importance_ess: float  # Kish's effective sample size of the weights


def _log_posterior(theta: np.ndarray, design: np.ndarray, y: np.ndarray, prior_sd) -> np.ndarray:
    """Unnormalised log posterior of each row of theta (exact log-sigmoid)."""
    eta = theta @ design.T
    loglik = np.sum(y * eta - np.logaddexp(0.0, eta), axis=-1)
    return loglik - 0.5 * np.sum((theta / prior_sd) ** 2, axis=-1)


def logistic_posterior(
    x: np.ndarray,
    y: np.ndarray,
    alpha_scale: float = 2.5,
    beta_scale: float = 1.0,
    draws: int = 100_000,
    df: float = 6.0,
    seed: int = 0,
) -> LogisticPosterior:
    """alpha ~ N(0, alpha_scale), beta_k ~ N(0, beta_scale), y_i ~ Bernoulli(sigmoid(
    alpha + x_i . beta)): the mode and Laplace covariance, and the posterior mean and sd
    by importance sampling from a Student-t(df) with that location and scale."""
    design = np.hstack([np.ones((len(x), 1)), x])
    dim = design.shape[1]
    prior_sd = np.array([alpha_scale] + [beta_scale] * (dim - 1))
    theta = np.zeros(dim)
    for _ in range(100):  # Newton's method on a strictly concave log posterior
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (y - p) - theta / prior_sd**2
        hess = design.T @ (design * (p * (1 - p))[:, None]) + np.diag(prior_sd**-2.0)
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    p = 1.0 / (1.0 + np.exp(-(design @ theta)))
    hess = design.T @ (design * (p * (1 - p))[:, None]) + np.diag(prior_sd**-2.0)
    cov = np.linalg.inv(hess)
    chol = np.linalg.cholesky(cov)

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, dim))
    radius = np.sqrt(rng.chisquare(df, draws) / df)
    proposal = theta + (z @ chol.T) / radius[:, None]
    # log density of the t proposal up to a constant: -(df + d)/2 log(1 + |z|^2 / (df r^2))
    mahalanobis = np.sum(z**2, axis=1) / radius**2
    log_q = -0.5 * (df + dim) * np.log1p(mahalanobis / df)
    log_p = np.concatenate(
        [
            _log_posterior(block, design, y, prior_sd)
            for block in np.array_split(proposal, max(1, draws // 10_000))
        ]
    )
    log_w = log_p - log_q
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = w @ proposal
    sd = np.sqrt(w @ (proposal - mean) ** 2)
    return LogisticPosterior(theta, cov, mean, sd, float(1.0 / np.sum(w**2)))
