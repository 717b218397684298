"""Fitting and sampling weighted deduction systems (``prog.deductions[NAME]``).

- :func:`adam_fit_deduction`: the maximum a posteriori weights of a corpus under
  independent Normal(0, prior_scale) priors on the learnable logits (maximum
  likelihood with ``prior_scale=None``), by Adam on the exact corpus log-likelihood
  sum_n log p(s_n); its gradient is the expected rule counts (inside-outside), which
  autograd computes through the inside pass.
- :func:`sample_corpus`: sentences drawn from the grammar (exact; see
  :meth:`Deduction.sample`).
- :func:`nuts_program_from_deduction`: a model/x/observations triple, following the
  model protocol of ``docs/dev/model-protocol.md``, whose posterior over the logits
  ``quivers.inference.MCMC`` samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributions import constraints

from quivers.runtime.deduction.module import Deduction
from quivers.runtime.trace import Site

__all__ = [
    "Deduction",
    "DeductionPosterior",
    "adam_fit_deduction",
    "nuts_program_from_deduction",
    "sample_corpus",
]

Corpus = Sequence[Sequence[str]]


def _distinct(corpus: Corpus) -> tuple[list[list[str]], torch.Tensor]:
    """The corpus's distinct sentences and how often each occurs: the log-likelihood
    is sum_s count(s) log p(s), so each sentence is scored once."""
    counts: dict[tuple[str, ...], int] = {}
    for s in corpus:
        if isinstance(s, str):
            raise ValueError(f"a corpus is a list of sentences (lists of words), got {s!r}")
        key = tuple(s)
        counts[key] = counts.get(key, 0) + 1
    return [list(s) for s in counts], torch.tensor(list(counts.values()), dtype=torch.float64)


def _log_prior(weights: torch.Tensor, prior_scale: float | None) -> torch.Tensor:
    if prior_scale is None:
        return weights.new_zeros(())
    return torch.distributions.Normal(0.0, prior_scale).log_prob(weights).sum()


def adam_fit_deduction(
    ded: Deduction,
    corpus: Corpus,
    steps: int = 300,
    lr: float = 0.05,
    prior_scale: float | None = 1.0,
) -> list[float]:
    """Fit ``ded``'s learnable weights in place; returns the loss after each step's
    gradient, the negative log posterior -(sum_n log p(s_n) + log p(w)) before it."""
    if not corpus:
        raise ValueError("adam_fit_deduction: the corpus is empty")
    sentences, counts = _distinct(corpus)
    ded.log_prob(sentences)  # validates every sentence before any step
    if ded.weights.numel() == 0:
        raise ValueError(f"deduction '{ded.system.name}' has no #[learnable] weights to fit")
    counts = counts.to(ded.weights.dtype)
    optim = torch.optim.Adam([ded.weights], lr=lr)
    history: list[float] = []
    for _ in range(steps):
        optim.zero_grad()
        likelihood = (counts * ded.log_prob(sentences)).sum()
        loss = -(likelihood + _log_prior(ded.weights, prior_scale))
        loss.backward()
        optim.step()
        history.append(float(loss.detach()))
    return history


def sample_corpus(
    ded: Deduction,
    length: int | None = None,
    n_samples: int = 1,
    seed: int | None = None,
    max_length: int = 12,
) -> list[list[str]]:
    """``n_samples`` sentences drawn from the grammar under its current weights."""
    return ded.sample(length=length, n=n_samples, seed=seed, max_length=max_length)


class DeductionPosterior(nn.Module):
    """p(w | corpus) for the learnable logits w of a deduction: one global latent site
    ``weights`` with a Normal(0, prior_scale) prior (real support), and the corpus
    log-likelihood as a factor (it is in ``log_joint``, not a site)."""

    def __init__(self, ded: Deduction, corpus: Corpus, prior_scale: float = 1.0) -> None:
        super().__init__()
        if not corpus:
            raise ValueError("nuts_program_from_deduction: the corpus is empty")
        if ded.weights.numel() == 0:
            raise ValueError(f"deduction '{ded.system.name}' has no #[learnable] weights")
        self.deduction = ded
        self.corpus, self.counts = _distinct(corpus)
        ded.log_prob(self.corpus)  # validates the corpus now
        self.prior_scale = float(prior_scale)
        self.observed_names: frozenset[str] = frozenset()
        self.latent_names: tuple[str, ...] = ("weights",)

    @property
    def weight_names(self) -> tuple[str, ...]:
        return self.deduction.weight_names

    def _prior(self) -> torch.distributions.Normal:
        w = self.deduction.weights
        return torch.distributions.Normal(
            torch.zeros_like(w.detach()), torch.full_like(w.detach(), self.prior_scale)
        )

    def trace(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> dict:
        obs = dict(observations or {})
        w = obs["weights"] if "weights" in obs else self._prior().sample()
        lp = self._prior().log_prob(w).sum()
        return {"weights": Site("weights", w, w, lp, constraints.real, False, True)}

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        w = values["weights"]
        lp = self.deduction.log_prob(self.corpus, weights=w)
        likelihood = (self.counts.to(lp.dtype) * lp).sum()
        return self._prior().log_prob(w).sum() + likelihood

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        return self.trace(x, observations)["weights"].value

    def forward(self, x: Any) -> Any:
        return self.rsample(x)


def nuts_program_from_deduction(
    ded: Deduction, corpus: Corpus, prior_scale: float = 1.0
) -> tuple[DeductionPosterior, torch.Tensor, dict[str, Any]]:
    """(model, x, observations) for ``MCMC(...).run(model, x, observations)``: the
    posterior of ``ded``'s logits given ``corpus``; ``samples["weights"]`` columns
    follow ``model.weight_names``."""
    if not math.isfinite(prior_scale) or prior_scale <= 0:
        raise ValueError(f"prior_scale must be positive, got {prior_scale}")
    return DeductionPosterior(ded, corpus, prior_scale), torch.zeros(1, 1), {}
