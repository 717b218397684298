"""Fitting deduction weights: MAP recovery of known PCFG probabilities, sampling, and
NUTS over the weights."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from grammars import cfg_system
from quivers.inference import MCMC, NUTSKernel
from quivers.runtime.deduction.module import Deduction
from quivers.runtime.trace import Model
from quivers.stochastic.deduction import (
    adam_fit_deduction,
    nuts_program_from_deduction,
    sample_corpus,
)

# An unambiguous-enough PCFG whose rule choices are identifiable from yields.
BINARY = [("S", "NP", "VP"), ("NP", "Det", "N"), ("VP", "V", "NP")]
UNARY = [("VP", "V"), ("NP", "N")]
LEX = [("the", "Det"), ("dog", "N"), ("cat", "N"), ("sees", "V"), ("runs", "V")]


# small tensors: intra-op threads only add synchronisation (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def truth() -> Deduction:
    ded = Deduction(cfg_system(BINARY, UNARY, LEX)).double()
    with torch.no_grad():
        # NP -> Det N vs NP -> N; VP -> V NP vs VP -> V; N: dog vs cat; V: sees vs runs
        ded.weights.copy_(torch.tensor([0.0, 1.0, 0.5, -0.5, 0.0, 0.0, 0.8, 0.0, -0.7, 0.0]))
    return ded


def test_sample_draws_sentences_the_grammar_derives() -> None:
    ded = truth()
    draws = sample_corpus(ded, n_samples=200, seed=3)
    assert len(draws) == 200
    assert all(bool(torch.isfinite(ded.log_prob(s))) for s in draws)
    again = sample_corpus(ded, n_samples=200, seed=3)
    assert draws == again  # the seed fixes the draws
    fixed = ded.sample(length=3, n=50, seed=0)
    assert {len(s) for s in fixed} == {3}


def test_sampled_lengths_follow_the_inside_totals() -> None:
    ded = truth()
    draws = ded.sample(n=4000, seed=0, max_length=6)
    freq = Counter(len(s) for s in draws)
    with torch.no_grad():
        totals = torch.tensor([ded._any_total(n, ded.instance_log_weights()) for n in range(1, 7)])
    expected = torch.softmax(totals, 0)
    for n in range(1, 7):
        assert freq[n] / 4000 == pytest.approx(float(expected[n - 1]), abs=0.025)


def test_map_fit_recovers_the_rule_probabilities() -> None:
    """Tolerance: 0.05 on every probability with 1500 sentences (the sampling error of a
    proportion near 0.5 from ~1500 draws is about 0.013)."""
    source = truth()
    corpus = sample_corpus(source, n_samples=1500, seed=11)
    learner = Deduction(source.system).double()
    history = adam_fit_deduction(learner, corpus, steps=250, lr=0.1, prior_scale=10.0)
    assert history[-1] < history[0] - 100
    assert history[-1] <= min(history) + 1.0  # converged, not oscillating
    want, got = source.rule_probabilities(), learner.rule_probabilities()
    assert want.keys() == got.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=0.05), name


def nuts_run(warmup: int, samples: int, chains: int, depth: int):
    ded = Deduction(cfg_system(BINARY, UNARY, LEX)).double()
    corpus = [["the", "dog", "sees", "the", "cat"], ["dog", "runs"], ["the", "cat", "runs"]] * 3
    model, x, obs = nuts_program_from_deduction(ded, corpus, prior_scale=1.0)
    assert isinstance(model, Model) and obs == {} and x.shape == (1, 1)
    kernel = NUTSKernel(step_size=0.1, max_tree_depth=depth, target_accept=0.8)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=samples, num_chains=chains, seed=0)
    return model, mcmc.run(model, x, obs)


def test_nuts_on_the_weights_has_no_divergences() -> None:
    model, result = nuts_run(warmup=60, samples=30, chains=1, depth=4)
    assert int(result.divergence_counts.sum()) == 0
    assert float(result.acceptance_rates.mean()) > 0.5
    w = result.samples["weights"]
    assert w.shape == (1, 30, len(model.weight_names)) and len(model.weight_names) == 10
    assert bool(torch.isfinite(w).all())


@pytest.mark.slow
def test_nuts_chains_agree_with_no_divergences() -> None:
    model, result = nuts_run(warmup=150, samples=150, chains=2, depth=5)
    assert int(result.divergence_counts.sum()) == 0
    assert float(result.r_hat["weights"].max()) < 1.1
    # weights the corpus identifies (NP -> Det N vs NP -> N) move off the prior mean
    names = list(model.weight_names)
    w = result.samples["weights"].reshape(-1, len(names))
    assert float(w[:, names.index("NP_Det_N")].mean()) > 0.3
