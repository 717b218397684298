"""Convergence diagnostics: rank-normalised split R-hat and bulk/tail ESS.

Following Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC",
Bayesian Analysis 16(2):

- chains are split in half (so a trend within a chain shows as disagreement);
- draws are replaced by normal scores of their pooled ranks (rank normalisation,
  Blom's offset 3/8), which makes the diagnostics robust to heavy tails;
- R-hat is the larger of the rank-normalised split R-hat of the draws (bulk) and of
  the draws folded around their median (tails);
- ESS uses the multi-chain autocorrelation estimate of their equation (10) with
  Geyer's (1992) initial monotone positive sequence truncation, in Stan's form (the
  one ArviZ and posterior implement; ``tests/inference/test_arviz.py`` checks the
  agreement to 1e-6); bulk ESS is computed on rank-normalised split chains, tail ESS
  on indicators of the 5% and 95% quantiles.

Every function takes draws of shape ``(chains, draws, *event)`` and returns one
number per event coordinate (shape ``event``).
"""

from __future__ import annotations

import math

import torch


def _as_3d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    if x.dim() < 2:
        raise ValueError(f"draws must have shape (chains, draws, ...), got {tuple(x.shape)}")
    event = x.shape[2:]
    return x.reshape(x.shape[0], x.shape[1], -1).to(torch.float64), event


def split_chains(x: torch.Tensor) -> torch.Tensor:
    """(M, N, P) -> (2M, N//2, P): first and last halves (the middle draw of an odd
    chain is dropped)."""
    n = x.shape[1] // 2
    return torch.cat([x[:, :n], x[:, x.shape[1] - n :]], dim=0)


def rank_normalize(x: torch.Tensor) -> torch.Tensor:
    """Normal scores of pooled average ranks, per coordinate: (M, N, P) -> (M, N, P)."""
    m, n, p = x.shape
    flat = x.reshape(m * n, p).T.contiguous()  # (P, S)
    srt, _ = torch.sort(flat, dim=1)
    lo = torch.searchsorted(srt, flat, right=False).to(torch.float64)
    hi = torch.searchsorted(srt, flat, right=True).to(torch.float64)
    rank = (lo + hi + 1.0) / 2.0  # average 1-based rank of ties
    s = m * n
    z: torch.Tensor = torch.special.ndtri((rank - 0.375) / (s + 0.25))
    return z.T.reshape(m, n, p)


def _rhat_basic(x: torch.Tensor) -> torch.Tensor:
    """Classic potential scale reduction (Gelman et al., BDA3, 11.4) on (M, N, P)."""
    _, n, _ = x.shape
    chain_mean = x.mean(dim=1)
    within = x.var(dim=1, unbiased=True).mean(dim=0)
    between = n * chain_mean.var(dim=0, unbiased=True)
    var_plus = (n - 1) / n * within + between / n
    return torch.sqrt(var_plus / within)


def _autocovariance(x: torch.Tensor) -> torch.Tensor:
    """Biased autocovariance per chain along the draws axis, via FFT: (M, N, P)."""
    n = x.shape[1]
    centred = x - x.mean(dim=1, keepdim=True)
    size = 1 << (2 * n - 1).bit_length()
    f = torch.fft.rfft(centred, n=size, dim=1)
    acov: torch.Tensor = torch.fft.irfft(f * f.conj(), n=size, dim=1)[:, :n]
    return acov / n


def _ess_basic(x: torch.Tensor) -> torch.Tensor:
    """Multi-chain ESS of (M, N, P) draws (Vehtari et al. 2021, eq. 10-11)."""
    m, n, p = x.shape
    if n < 4:
        return torch.full((p,), math.nan, dtype=torch.float64)
    acov = _autocovariance(x)
    chain_var = acov[:, 0] * n / (n - 1)
    mean_var = chain_var.mean(dim=0)
    var_plus = mean_var * (n - 1) / n
    if m > 1:
        var_plus = var_plus + x.mean(dim=1).var(dim=0, unbiased=True)
    rho = 1.0 - (mean_var - acov.mean(dim=0)) / var_plus  # (N, P)
    rho[0] = 1.0
    # Geyer's initial positive sequence as Stan computes it (and ArviZ): pairs
    # Gamma_k = rho_2k + rho_2k+1 for k <= kmax (lags below N - 2); the sequence ends
    # at the first k >= 1 with Gamma_k <= 0 (that pair is left out), the pairs kept
    # are made monotone (Geyer's initial monotone sequence), and the even lag of the
    # first pair left out is added once when it is positive (Stan's refinement).
    kmax = max(math.ceil((n - 2) / 2) - 1, 0)
    pairs = rho[: 2 * kmax + 2].reshape(kmax + 1, 2, p).sum(dim=1)
    alive = torch.cumprod((pairs > 0).to(torch.int64), dim=0)  # all pairs so far positive
    stop = alive[:kmax].sum(dim=0) if kmax > 0 else torch.zeros(p, dtype=torch.int64)
    monotone = torch.cummin(pairs, dim=0).values
    kept = torch.arange(kmax + 1, device=x.device)[:, None] < stop[None, :]
    even = rho[2 * stop, torch.arange(p, device=x.device)]
    tau = -1.0 + 2.0 * (monotone * kept).sum(dim=0) + torch.clamp(even, min=0.0)
    total = m * n
    tau = torch.clamp(tau, min=1.0 / math.log10(total))  # ESS <= S log10(S)
    ess = total / tau
    constant = var_plus <= 0
    return torch.where(constant, torch.full_like(ess, math.nan), ess)


def r_hat(draws: torch.Tensor) -> torch.Tensor:
    """Rank-normalised split R-hat, max of bulk and folded (Vehtari et al. 2021)."""
    x, event = _as_3d(draws)
    if x.shape[1] < 4:
        return torch.full(event, math.nan, dtype=torch.float64)
    split = split_chains(x)
    bulk = _rhat_basic(rank_normalize(split))
    folded = (split - split.reshape(-1, split.shape[-1]).median(dim=0).values).abs()
    tail = _rhat_basic(rank_normalize(folded))
    return torch.maximum(bulk, tail).reshape(event)


def split_r_hat(draws: torch.Tensor) -> torch.Tensor:
    """Plain split R-hat without rank normalisation (for reference)."""
    x, event = _as_3d(draws)
    return _rhat_basic(split_chains(x)).reshape(event)


def ess(draws: torch.Tensor) -> torch.Tensor:
    """Bulk effective sample size: ESS of rank-normalised split chains."""
    x, event = _as_3d(draws)
    return _ess_basic(rank_normalize(split_chains(x))).reshape(event)


def ess_basic(draws: torch.Tensor) -> torch.Tensor:
    """ESS of the raw draws (no splitting, no ranks): for the mean of a chain."""
    x, event = _as_3d(draws)
    return _ess_basic(x).reshape(event)


def tail_ess(draws: torch.Tensor) -> torch.Tensor:
    """Tail ESS: the smaller ESS of the indicators of the 5% and 95% quantiles."""
    x, event = _as_3d(draws)
    split = split_chains(x)
    pooled = x.reshape(-1, x.shape[-1])  # quantiles of every draw (R's type 7), as ArviZ
    q05 = torch.quantile(pooled, 0.05, dim=0)
    q95 = torch.quantile(pooled, 0.95, dim=0)
    low = _ess_basic((split <= q05).to(torch.float64))
    high = _ess_basic((split <= q95).to(torch.float64))
    return torch.minimum(low, high).reshape(event)
