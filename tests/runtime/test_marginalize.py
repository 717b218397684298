"""`marginalize` blocks against brute-force enumeration (docs/language.md,
"Marginalisation"): a Gaussian mixture, a zero-inflated Poisson, a 3-state HMM's
forward pass, a grouped mixture; and what trace, rsample and log_joint give."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import distributions as D

from quivers.dsl import loads
from quivers.runtime.errors import QvrDataError

DATA = Path(__file__).resolve().parents[1] / "data" / "marginalize"

MIXTURE = """\
object K : FinSet 3
object Y : Real 1
program gmm : Y -> Y
    sample a : Positive 3 <- Gamma(2.0, 2.0)
    sample w <- Dirichlet(a)
    sample mu : K <- Normal(0.0, 5.0)
    sample s : K <- HalfNormal(2.0)
    marginalize c : K <- Categorical(w) [reduction=logsumexp]
        let m = mu[c]
        let sd = s[c]
        observe y : Y <- Normal(m, sd)
    return y
export gmm
"""


def _values(trace, **extra):
    return {**{k: s.trace for k, s in trace.items()}, **extra}


def test_gaussian_mixture_equals_enumeration_and_sites_share_it_by_the_chain_rule():
    model = loads(MIXTURE).morphism
    x = torch.zeros(9, 1)
    y = torch.randn(9, 1) * 4.0
    trace = model.trace(x, {"y": y})
    v = _values(trace)
    a, w, mu, s = v["a"], v["w"], v["mu"][:, 0], v["s"][:, 0]
    expected = (
        D.Gamma(2.0, 2.0).log_prob(a).sum()
        + D.Dirichlet(a).log_prob(w)
        + D.Normal(0.0, 5.0).log_prob(mu).sum()
        + D.HalfNormal(2.0).log_prob(s).sum()
    )
    for n in range(9):
        per_k = [w[k].log() + D.Normal(mu[k], s[k]).log_prob(y[n, 0]) for k in range(3)]
        expected = expected + torch.logsumexp(torch.stack(per_k), 0)
    assert torch.allclose(model.log_joint(x, v), expected, atol=1e-4)
    # the latent is not a site; the observed site carries the marginal, per row
    assert list(trace) == ["a", "w", "mu", "s", "y"]
    assert model.latent_names == ("a", "w", "mu", "s") and model.observed_names == {"y"}
    assert trace["y"].log_prob.shape == (9,) and trace["y"].observed
    total = sum(site.log_prob.sum() for site in trace.values())
    assert torch.allclose(total, expected, atol=1e-4)


def test_two_sites_in_one_body_split_the_marginal_by_the_chain_rule():
    text = MIXTURE.replace(
        "        observe y : Y <- Normal(m, sd)\n",
        "        observe y : Y <- Normal(m, sd)\n        observe z : Y <- Normal(m, 1.0)\n",
    )
    model = loads(text).morphism
    x, y, z = torch.zeros(4, 1), torch.randn(4, 1), torch.randn(4, 1)
    trace = model.trace(x, {"y": y, "z": z})
    v = _values(trace)
    w, mu, s = v["w"], v["mu"][:, 0], v["s"][:, 0]

    def joint(n: int, with_z: bool) -> torch.Tensor:
        per_k = []
        for k in range(3):
            t = w[k].log() + D.Normal(mu[k], s[k]).log_prob(y[n, 0])
            if with_z:
                t = t + D.Normal(mu[k], 1.0).log_prob(z[n, 0])
            per_k.append(t)
        return torch.logsumexp(torch.stack(per_k), 0)

    for n in range(4):
        assert torch.allclose(trace["y"].log_prob[n], joint(n, False), atol=1e-4)
        assert torch.allclose(trace["z"].log_prob[n], joint(n, True) - joint(n, False), atol=1e-4)
    with pytest.raises(QvrDataError, match="all of the block's sites"):
        model.trace(x, {"y": y})


def test_generation_draws_the_latent_from_its_prior_then_the_body():
    model = loads(MIXTURE).morphism
    x = torch.zeros(4000, 1)
    mu = torch.tensor([[-10.0], [0.0], [10.0]])
    s = torch.full((3, 1), 0.1)
    w = torch.tensor([0.2, 0.3, 0.5])
    a = torch.ones(3)
    y = model.rsample(x, {"a": a, "w": w, "mu": mu, "s": s})
    share = torch.stack([(y - m).abs().lt(1.0).float().mean() for m in mu[:, 0]])
    assert torch.allclose(share, w, atol=0.03)  # 4000 draws: sd of a share < 0.008
    trace = model.trace(x[:5], {"a": a, "w": w, "mu": mu, "s": s})
    assert trace["y"].trace.shape == (5, 1)  # drawn, and scored with c summed out


ZIP = """\
object X : Real 1
object Count : Real 1
program zip(x) : X -> Count
    sample a <- Normal(0.0, 2.0)
    sample b <- Normal(0.0, 2.0)
    sample pi <- Beta(2.0, 2.0)
    let rate = exp(a + b * x)
    marginalize zero <- Bernoulli(pi)
        let lam = rate * (1.0 - zero)
        observe y : Count <- Poisson(lam)
    return y
export zip
"""


def test_zero_inflated_poisson_equals_enumeration():
    model = loads(ZIP).morphism
    x = torch.randn(12, 1)
    y = torch.tensor([0, 0, 1, 3, 0, 2, 0, 5, 0, 1, 0, 4], dtype=torch.float32).unsqueeze(-1)
    v = _values(model.trace(x, {"y": y}))
    a, b, pi = v["a"], v["b"], v["pi"]
    rate = torch.exp(a + b * x[:, 0])
    expected = (
        D.Normal(0.0, 2.0).log_prob(a)
        + D.Normal(0.0, 2.0).log_prob(b)
        + D.Beta(2.0, 2.0).log_prob(pi)
    )
    for n in range(12):
        count = y[n, 0]
        poisson = torch.exp(D.Poisson(rate[n]).log_prob(count))
        expected = expected + torch.log((1 - pi) * poisson + pi * (count == 0).float())
    assert torch.allclose(model.log_joint(x, v), expected, atol=1e-4)


HMM = (DATA / "hmm.qvr").read_text()


def _log_table(node, rows: int, cols: int) -> torch.Tensor:
    """log p(j | i) of a finite kernel, row by row, through its own log density."""
    out = []
    for i in range(rows):
        out.append(node.run(torch.full((cols,), i), torch.arange(cols), True)[2])
    return torch.stack(out)


def test_hmm_forward_pass_equals_enumerating_every_path():
    model = loads(HMM).morphism
    x = torch.randint(0, 4, (6, 5))
    cell = model._step_path.cell
    log_t = _log_table(cell._step_next, 3, 3)
    log_e = _log_table(cell._step_y, 3, 4)
    expected = []
    for row in x:
        paths = []
        for path in itertools.product(range(3), repeat=5):  # 243 paths, h_0 = 0
            lp, prev = torch.zeros(()), 0
            for t, z in enumerate(path):
                lp = lp + log_t[prev, z] + log_e[z, row[t]]
                prev = z
            paths.append(lp)
        expected.append(torch.logsumexp(torch.stack(paths), 0))
    trace = model.trace(x)
    assert torch.allclose(trace["path"].log_prob, torch.stack(expected), atol=1e-4)
    assert torch.allclose(model.log_joint(x, {}), torch.stack(expected).sum(), atol=1e-3)
    assert model.latent_names == () and trace["path"].observed
    assert trace["path"].trace == ()  # no random choice: its observation is the input
    assert torch.allclose(model.log_joint(x, {"path": ()}), torch.stack(expected).sum(), atol=1e-3)
    with pytest.raises(QvrDataError, match="pass nothing for 'path'"):
        model.log_joint(x, {"path": x})


def test_hmm_last_state_is_drawn_from_its_filtering_distribution():
    model = loads(HMM).morphism
    x = torch.randint(0, 4, (1, 3)).expand(3000, 3)
    cell = model._step_path.cell
    log_t = _log_table(cell._step_next, 3, 3)
    log_e = _log_table(cell._step_y, 3, 4)
    alpha = torch.full((3,), -torch.inf)
    alpha[0] = 0.0
    for t in range(3):
        alpha = torch.logsumexp(alpha.unsqueeze(-1) + log_t, 0) + log_e[:, x[0, t]]
    filtering = torch.softmax(alpha, 0)
    draws = model.rsample(x)
    share = torch.stack([(draws == k).float().mean() for k in range(3)])
    assert torch.allclose(share, filtering, atol=0.035)  # 3000 draws: sd < 0.01


GROUPED = """\
object K : FinSet 2
object Item : FinSet 3
object Y : Real 1
program grouped : Y -> Y
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Bernoulli(0.3) [over=Item, via=item]
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    return y
export grouped
"""


def test_grouped_block_shares_one_latent_per_element():
    model = loads(GROUPED).morphism
    item = torch.tensor([0, 0, 1, 2, 2, 2, 1])
    y = torch.randn(7, 1) * 3.0
    x = torch.zeros(7, 1)
    v = _values(model.trace(x, {"y": y, "item": item}), item=item)
    mu = v["mu"][:, 0]
    expected = D.Normal(0.0, 5.0).log_prob(mu).sum()
    prior = torch.tensor([0.7, 0.3]).log()
    for g in range(3):
        rows = (item == g).nonzero().flatten()
        per_k = [prior[k] + D.Normal(mu[k], 1.0).log_prob(y[rows, 0]).sum() for k in range(2)]
        expected = expected + torch.logsumexp(torch.stack(per_k), 0)
    assert torch.allclose(model.log_joint(x, v), expected, atol=1e-4)
    with pytest.raises(QvrDataError, match="index 'item' has ids 0..3"):
        model.log_joint(x, {**v, "item": torch.tensor([0, 0, 1, 3, 2, 2, 1])})
    with pytest.raises(QvrDataError, match="missing host data 'item'"):
        model.log_joint(x, {k: t for k, t in v.items() if k != "item"})


def test_a_kernel_prior_per_row_equals_enumeration():
    text = """\
object K : FinSet 3
object X : Real 2
object Y : Real 1
morphism weights : X -> K [role=kernel] ~ Categorical
morphism component : K -> Y [role=kernel] ~ Normal
program p(x) : X -> Y
    marginalize c <- weights(x)
        observe y : Y <- component(c)
    return y
export p
"""
    model = loads(text).morphism
    x, y = torch.randn(5, 2), torch.randn(5, 1)
    got = model.log_joint(x, {"y": y})
    w_node, c_node = model._step_c, model._step_y
    expected = torch.zeros(())
    for n in range(5):
        per_k = []
        for k in range(3):
            kk = torch.tensor([k])
            per_k.append(
                w_node.run(x[n : n + 1], kk, True)[2][0] + c_node.run(kk, y[n : n + 1], True)[2][0]
            )
        expected = expected + torch.logsumexp(torch.stack(per_k), 0)
    assert torch.allclose(got, expected, atol=1e-4)
    # the mixture is differentiable in its parameters, as SVI needs
    got.backward()
    assert all(p.grad is not None for p in model.parameters())
