"""Warmup adaptation of the step size and of a diagonal mass matrix.

- Step size: dual averaging (Nesterov, 2009) tuned to a target acceptance statistic,
  as in Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15, section 3.2,
  Algorithm 5 (gamma=0.05, t0=10, kappa=0.75, mu=log(10 eps0)).
- Mass matrix: Stan's windowed schedule (Stan Reference Manual, "HMC algorithm
  parameters"): an initial fast buffer (75 iterations) where only the step size adapts,
  slow windows doubling from 25 iterations where the variance of the unconstrained
  draws is accumulated (Welford), and a terminal fast buffer (50). At the end of each
  window the inverse metric becomes the regularised variance
  ``n/(n+5) var + 1e-3 * 5/(n+5)`` and step-size adaptation restarts. When the
  default buffers do not fit, they become 15% / 75% / 10% of the warmup; below 20
  warmup iterations only the step size adapts.
"""

from __future__ import annotations

import math

import torch


class DualAveraging:
    """Hoffman & Gelman (2014) Algorithm 5 for log step size."""

    def __init__(
        self,
        step_size: float,
        target: float,
        gamma: float = 0.05,
        t0: float = 10.0,
        kappa: float = 0.75,
    ) -> None:
        self.target = target
        self.gamma, self.t0, self.kappa = gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        self.mu = math.log(10.0 * step_size)
        self.t = 0
        self.h_bar = 0.0
        self.log_eps = math.log(step_size)
        self.log_eps_bar = 0.0

    def update(self, accept_stat: float) -> float:
        """Feed one transition's acceptance statistic; returns the next step size."""
        if math.isnan(accept_stat):
            accept_stat = 0.0
        self.t += 1
        eta = 1.0 / (self.t + self.t0)
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.target - accept_stat)
        self.log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        w = self.t ** (-self.kappa)
        self.log_eps_bar = w * self.log_eps + (1.0 - w) * self.log_eps_bar
        return math.exp(self.log_eps)

    @property
    def final_step_size(self) -> float:
        return math.exp(self.log_eps_bar) if self.t > 0 else math.exp(self.log_eps)


class WelfordVariance:
    """Running mean and variance of vectors (Welford, 1962)."""

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        self.n = 0
        self.mean = torch.zeros(dim, dtype=torch.float64, device=device)
        self.m2 = torch.zeros(dim, dtype=torch.float64, device=device)

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64)
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def regularized_variance(self) -> torch.Tensor:
        n = self.n
        var = self.m2 / max(n - 1, 1)
        return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))


def adaptation_windows(
    num_warmup: int,
    init_buffer: int = 75,
    term_buffer: int = 50,
    base_window: int = 25,
) -> tuple[int, list[int]]:
    """(start of the first slow window, ends of the slow windows) for Stan's schedule.

    Iterations count from 0; a window ending at ``e`` covers iterations < e. Returns
    an empty list when the warmup is too short (< 20) to estimate a metric.
    """
    if num_warmup < 20:
        return num_warmup, []
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - init_buffer - term_buffer
    last = num_warmup - term_buffer
    ends: list[int] = []
    start, size = init_buffer, base_window
    while start < last:
        end = start + size
        if end + 2 * size > last:
            end = last
        ends.append(end)
        start, size = end, 2 * size
    return init_buffer, ends


class WarmupAdapter:
    """Drives step size and diagonal inverse-metric adaptation over the warmup."""

    def __init__(
        self,
        num_warmup: int,
        dim: int,
        step_size: float,
        target_accept: float,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        like: torch.Tensor | None = None,
    ) -> None:
        """``like`` (a position) gives the metric's dtype and device (default: the
        default dtype, on the CPU)."""
        self.num_warmup = num_warmup
        self.step_size = float(step_size)
        dtype = like.dtype if like is not None else None
        self.device = like.device if like is not None else None
        self.inv_mass = torch.ones(dim, dtype=dtype, device=self.device)
        self.adapt_step_size = adapt_step_size
        self.dual = DualAveraging(self.step_size, target_accept)
        start, ends = adaptation_windows(num_warmup) if adapt_mass_matrix else (0, [])
        self.window_start = start
        self.window_ends = ends
        self.last_window_end = ends[-1] if ends else start
        self.welford = WelfordVariance(dim, self.device)

    def restart_step_size(self, step_size: float) -> None:
        self.step_size = step_size
        self.dual.restart(step_size)

    def update(self, iteration: int, q: torch.Tensor, accept_stat: float) -> bool:
        """After warmup iteration ``iteration`` (0-based); True if the metric changed."""
        if self.adapt_step_size:
            self.step_size = self.dual.update(accept_stat)
        if self.window_ends and self.window_start <= iteration < self.last_window_end:
            self.welford.add(q)
            if iteration + 1 in self.window_ends:
                self.inv_mass = self.welford.regularized_variance().to(q.dtype)
                self.welford = WelfordVariance(q.numel(), self.device)
                return True
        return False

    def finish(self) -> float:
        """End of warmup: the step size to sample with (the dual-averaged iterate)."""
        if self.adapt_step_size and self.dual.t > 0:
            self.step_size = self.dual.final_step_size
        return self.step_size
