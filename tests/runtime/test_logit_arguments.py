"""A probability written ``sigmoid(e)`` is scored from the logit ``e``.

In float32 ``sigmoid(20.0)`` is exactly 1.0, and a Bernoulli given that probability
scores the outcome 0 as log(eps) ~ -16 instead of -20: a silently wrong density in
the tails of every logistic regression. The reference is SciPy's ``log_expit`` in
float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import special, stats

from quivers.dsl import loads

THROUGH_A_LET = """\
object Feature : Real 1
object Coin : FinSet 2
program logistic(x) : Feature -> Coin
    sample w <- Normal(0.0, 1.0)
    let eta = w * x
    let p = sigmoid(eta)
    observe y : Coin <- Bernoulli(p)
    return y
export logistic
"""
# through two lets, as users name their linear predictor and its probability
TWO_LETS = THROUGH_A_LET.replace("let p = sigmoid(eta)", "let q = sigmoid(eta)\n    let p = q")
ETA = np.array([20.0, -30.0, 0.5, 45.0, -17.5])
Y = np.array([0, 1, 1, 1, 0])


@pytest.mark.parametrize("source", [THROUGH_A_LET, TWO_LETS], ids=["let", "two-lets"])
def test_bernoulli_of_a_sigmoid_is_exact_in_the_tails(source):
    model = loads(source).morphism
    x = torch.tensor(ETA, dtype=torch.float32).unsqueeze(-1)
    got = model.log_joint(x, {"w": torch.tensor(1.0), "y": torch.from_numpy(Y)})
    # log p(y | eta) = log_expit(eta) if y else log_expit(-eta)
    expected = (
        stats.norm.logpdf(1.0)
        + np.where(Y == 1, special.log_expit(ETA), special.log_expit(-ETA)).sum()
    )
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_binomial_of_a_sigmoid_is_exact_in_the_tails():
    source = """\
object Feature : Real 1
program trials(x) : Feature -> Feature
    let eta = 25.0 * x
    let p = sigmoid(eta)
    observe k : Feature <- Binomial(10.0, p)
    return x
export trials
"""
    model = loads(source).morphism
    x = torch.tensor([[1.0], [-1.0]])
    k = torch.tensor([[3.0], [10.0]])
    got = model.log_joint(x, {"k": k})
    eta = np.array([25.0, -25.0])
    expected = (
        special.gammaln(11)
        - special.gammaln(k.numpy()[:, 0] + 1)
        - special.gammaln(11 - k.numpy()[:, 0])
        + k.numpy()[:, 0] * special.log_expit(eta)
        + (10 - k.numpy()[:, 0]) * special.log_expit(-eta)
    ).sum()
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_a_probability_that_is_not_a_sigmoid_is_used_as_written():
    source = THROUGH_A_LET.replace("let p = sigmoid(eta)", "let p = 0.25 + 0.0 * eta")
    model = loads(source).morphism
    x = torch.tensor(ETA, dtype=torch.float64).unsqueeze(-1)
    got = model.log_joint(
        x, {"w": torch.tensor(1.0, dtype=torch.float64), "y": torch.from_numpy(Y)}
    )
    expected = stats.norm.logpdf(1.0) + stats.bernoulli.logpmf(Y, 0.25).sum()
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_a_summed_out_bernoulli_of_a_sigmoid_equals_enumeration():
    source = """\
object X : Real 1
program gate(x) : X -> X
    let p = sigmoid(8.0 * x)
    marginalize on <- Bernoulli(p)
        let m = 3.0 * on
        observe y : X <- Normal(m, 1.0)
    return y
export gate
"""
    model = loads(source).morphism
    xs = np.array([2.5, -3.0, 0.1])
    ys = np.array([0.2, 2.9, 1.0])
    x = torch.tensor(xs, dtype=torch.float32).unsqueeze(-1)
    got = model.log_joint(x, {"y": torch.tensor(ys, dtype=torch.float32).unsqueeze(-1)})
    on = special.log_expit(8.0 * xs) + stats.norm.logpdf(ys, 3.0, 1.0)
    off = special.log_expit(-8.0 * xs) + stats.norm.logpdf(ys, 0.0, 1.0)
    assert got.item() == pytest.approx(np.logaddexp(on, off).sum(), rel=1e-5)
