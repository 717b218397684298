"""R-hat and ESS (Vehtari et al. 2021) against hand computations and known values."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from quivers.inference import diagnostics as dg


def ar1(chains: int, n: int, rho: float, seed: int) -> torch.Tensor:
    """Stationary AR(1) chains with unit marginal variance."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(chains, n, generator=g, dtype=torch.float64)
    x = torch.empty(chains, n, dtype=torch.float64)
    x[:, 0] = eps[:, 0]
    s = math.sqrt(1 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + s * eps[:, t]
    return x


# ---------------------------------------------------------------- plain-Python reference


def ref_rank_normalize(chains: list[list[float]]) -> list[list[float]]:
    pooled = sorted(v for c in chains for v in c)
    s = len(pooled)

    def rank(v: float) -> float:  # average 1-based rank of ties
        lo = sum(1 for w in pooled if w < v)
        eq = sum(1 for w in pooled if w == v)
        return lo + (eq + 1) / 2

    nd = statistics.NormalDist()
    return [[nd.inv_cdf((rank(v) - 0.375) / (s + 0.25)) for v in c] for c in chains]


def ref_split(chains: list[list[float]]) -> list[list[float]]:
    n = len(chains[0]) // 2
    return [c[:n] for c in chains] + [c[len(c) - n :] for c in chains]


def ref_rhat(chains: list[list[float]]) -> float:
    m, n = len(chains), len(chains[0])
    means = [sum(c) / n for c in chains]
    grand = sum(means) / m
    b = n / (m - 1) * sum((mu - grand) ** 2 for mu in means)
    w = (
        sum(sum((v - mu) ** 2 for v in c) / (n - 1) for c, mu in zip(chains, means, strict=True))
        / m
    )
    return math.sqrt(((n - 1) / n * w + b / n) / w)


def ref_ess(chains: list[list[float]]) -> float:
    """Vehtari et al. (2021) eq. (10) with Geyer's initial monotone sequence."""
    m, n = len(chains), len(chains[0])
    means = [sum(c) / n for c in chains]

    def acov(c: list[float], mu: float, t: int) -> float:
        return sum((c[i] - mu) * (c[i + t] - mu) for i in range(n - t)) / n

    w = sum(acov(c, mu, 0) * n / (n - 1) for c, mu in zip(chains, means, strict=True)) / m
    grand = sum(means) / m
    b_over_n = sum((mu - grand) ** 2 for mu in means) / (m - 1)
    var_plus = (n - 1) / n * w + b_over_n
    rho = [1.0] + [
        1 - (w - sum(acov(c, mu, t) for c, mu in zip(chains, means, strict=True)) / m) / var_plus
        for t in range(1, n)
    ]
    # Geyer's initial positive sequence in Stan's form: pairs of lags while the
    # previous pair is positive and the lag stays below n - 3 ...
    t, even, odd = 1, 1.0, rho[1]
    kept = [1.0, rho[1]]
    while t < n - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            kept += [even, odd]
        t += 2
    # ... made monotone, plus the last even lag once when it is positive
    total, prev = 0.0, math.inf
    for i in range(0, t - 1, 2):
        prev = min(prev, kept[i] + kept[i + 1])
        total += prev
    tau = max(-1 + 2 * total + max(even, 0.0), 1 / math.log10(m * n))
    return m * n / tau


def test_matches_plain_python_reference_on_small_chains():
    x = ar1(3, 41, 0.6, seed=11)
    x[1] += 0.3  # a little disagreement between chains
    chains = x.tolist()
    split = ref_split(chains)
    z = ref_rank_normalize(split)
    med = statistics.median(v for c in split for v in c)
    folded = ref_rank_normalize([[abs(v - med) for v in c] for c in split])
    want_rhat = max(ref_rhat(z), ref_rhat(folded))
    assert float(dg.r_hat(x[..., None])) == pytest.approx(want_rhat, abs=1e-9)
    assert float(dg.ess(x[..., None])) == pytest.approx(ref_ess(z), rel=1e-9)
    assert float(dg.split_r_hat(x[..., None])) == pytest.approx(ref_rhat(split), abs=1e-9)


def test_iid_chains():
    x = torch.randn(4, 1000, 3, generator=torch.Generator().manual_seed(0))
    r, e = dg.r_hat(x), dg.ess(x)
    assert r.shape == (3,) and e.shape == (3,)
    assert bool((r < 1.01).all())
    # ESS of 4000 iid draws: within 10 %
    assert bool(((e - 4000).abs() < 400).all()), e


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ar1_ess_matches_theory(rho):
    """ESS of AR(1) chains is N (1 - rho) / (1 + rho): 6667 and 1053 for 4 x 5000.

    The estimator's own spread is about 2 % (rho=0.5) and 10 % (rho=0.9) of the
    value, so: the mean over 8 independent replicates within 8 %, each replicate
    within 30 %.
    """
    want = 4 * 5000 * (1 - rho) / (1 + rho)
    bulk, basic = [], []
    for seed in range(8):
        x = ar1(4, 5000, rho, seed=seed)[..., None]
        bulk.append(float(dg.ess(x)))
        basic.append(float(dg.ess_basic(x)))
        assert float(dg.r_hat(x)) < 1.02
    for values in (bulk, basic):
        assert abs(sum(values) / 8 - want) < 0.08 * want, (values, want)
        assert all(abs(v - want) < 0.3 * want for v in values), (values, want)


def test_non_mixed_chains_have_large_r_hat():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 500, generator=g, dtype=torch.float64)
    x[2:] += 3.0  # two chains stuck in another mode
    assert float(dg.r_hat(x[..., None])) > 1.5
    # a chain drifting within itself is caught by splitting
    drift = torch.linspace(0, 5, 500, dtype=torch.float64) + 0.1 * x[0]
    assert float(dg.r_hat(drift[None, :, None])) > 1.5
    # scale disagreement only (same mean) is caught by the folded R-hat
    y = torch.randn(4, 500, generator=g, dtype=torch.float64)
    y[0] *= 5.0
    assert float(dg.r_hat(y[..., None])) > 1.1
    assert float(dg.split_r_hat(y[..., None])) < 1.05


def test_event_shape_is_kept_and_short_chains_give_nan():
    x = torch.randn(2, 100, 2, 3)
    assert dg.r_hat(x).shape == (2, 3) and dg.ess(x).shape == (2, 3)
    assert math.isnan(float(dg.r_hat(torch.randn(1, 3))))
    assert dg.tail_ess(torch.randn(4, 500, 2)).shape == (2,)
