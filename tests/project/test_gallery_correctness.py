"""Regressions for the silent wrong answers of issue 11 ("Correctness first").

Each test runs a QVR program end to end (source -> checker -> runtime -> inference)
and compares with an independent computation: torch.distributions densities written
out by hand, or the plain arithmetic of the model.
"""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from quivers.dsl import loads
from quivers.inference import ELBO, SVI, AutoNormalGuide
from quivers.runtime.errors import QvrDataError

from .helpers import ROOT

REGRESSION = (ROOT / "docs/examples/source/bayesian_linear_regression.qvr").read_text("utf-8")


def _blr_expected(x, y, se, slope, intercept, sigma):
    sd = torch.sqrt(sigma * sigma + se * se)
    lp = D.Normal(0.0, 3.0).log_prob(slope) + D.Normal(0.0, 3.0).log_prob(intercept)
    lp = lp + D.HalfNormal(1.0).log_prob(sigma)
    return lp + D.Normal(slope * x + intercept, sd).log_prob(y).sum()


@pytest.mark.parametrize("se_shape", [(20,), (20, 1)], ids=["column", "rows"])
def test_host_vector_with_one_entry_per_row_is_one_value_per_row(se_shape):
    torch.manual_seed(0)
    model = loads(REGRESSION).morphism
    x, se = torch.randn(20, 1), torch.rand(se_shape) + 0.1
    tr = model.trace(x, {"se": se})
    assert tuple(tr["y"].trace.shape) == (20, 1)
    y = torch.randn(20, 1)
    values = {"slope": torch.tensor(0.5), "intercept": torch.tensor(-1.0)}
    values |= {"sigma": torch.tensor(0.7), "y": y, "se": se}
    want = _blr_expected(
        x, y, se.reshape(20, 1), values["slope"], values["intercept"], values["sigma"]
    )
    assert torch.allclose(model.log_joint(x, values), want, atol=1e-4)


@pytest.mark.parametrize("shape", [(19,), (3, 20), (20, 1, 1)])
def test_host_data_that_does_not_fit_the_rows_is_one_clear_error(shape):
    model = loads(REGRESSION).morphism
    with pytest.raises(QvrDataError) as err:
        model.trace(torch.randn(20, 1), {"se": torch.rand(shape)})
    msg = str(err.value)
    assert "host data 'se'" in msg and "20" in msg and str(tuple(shape)) in msg


def test_host_data_too_wide_for_the_site_is_one_clear_error():
    model = loads(REGRESSION).morphism
    with pytest.raises(QvrDataError) as err:
        model.trace(torch.randn(20, 1), {"se": torch.rand(20, 2)})
    msg = str(err.value)
    assert msg.startswith("site 'y'") and "(20, 1)" in msg and "(20, 2)" in msg


CELL = """\
object Tok : FinSet 5
object E : Real 2
object H : Real 3
morphism emb : Tok -> E [role=embed]
program cell(x, h) : E * H -> H
    sample c <- Normal(h, 0.5)
    return c
program lm : Tok -> H
    sample h <- emb >> scan(cell)
    return h
export lm
"""


def test_inline_family_inside_a_scan_cell_traces_scores_and_fits():
    torch.manual_seed(0)
    model = loads(CELL).morphism
    ids = torch.randint(0, 5, (4, 6))
    tr = model.trace(ids)["h"].trace
    assert tuple(tr.shape) == (4, 6, 3)
    # independent: a random walk h_t ~ Normal(h_{t-1}, 0.5), h_0 = 0
    prev = torch.cat([torch.zeros(4, 1, 3), tr[:, :-1]], dim=1)
    want = D.Normal(prev, 0.5).log_prob(tr).sum((1, 2))
    assert torch.allclose(model.log_joint(ids, {"h": tr}), want.sum(), atol=1e-4)
    assert torch.allclose(model._step_h.log_prob(ids, tr), want, atol=1e-4)
    guide = AutoNormalGuide(model)
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.05)
    svi = SVI(model, guide, optim, ELBO())
    losses = [svi.step(ids, {}) for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses)))


FAN = """\
object Tok : FinSet 5
object E : Real 2
object H : Real 3
morphism emb : Tok -> E [role=embed]
morphism f : E * H -> H [role=kernel, scale=0.1] ~ Normal
morphism g : E * H -> H [role=kernel, scale=0.1] ~ Normal
morphism k : H * H -> Tok [role=kernel] ~ Categorical
let bi = fan(emb >> scan(f), emb >> scan(g)) >> k
export bi
"""


def test_fan_of_scans_into_a_kernel_scores_its_own_trace():
    torch.manual_seed(0)
    model = loads(FAN).morphism
    ids = torch.randint(0, 5, (4, 6))
    assert tuple(model.rsample(ids).shape) == (4,)  # a value of the codomain
    tr = model.trace(ids)["bi"].trace
    (hf, hg), y = tr
    assert tuple(hf.shape) == (4, 6, 3) and tuple(y.shape) == (4,)
    lp = model.log_prob(ids, tr)
    assert lp.shape == (4,) and torch.isfinite(lp).all()
    sites = model.trace(ids)
    values = {name: site.trace for name, site in sites.items()}
    assert torch.allclose(
        model.log_joint(ids, values), sum(s.log_prob.sum() for s in sites.values()), atol=1e-4
    )


PRIORS_ONLY = """\
object X : Real 1
object Y : Real 1
program reg(x) : X -> Y
    sample a <- Normal(0.0, 1.0)
    sample s <- HalfNormal(1.0)
    let mu = a * x
    observe y : Y <- Normal(mu, s)
    return y
export reg
"""


def test_reference_svi_recipe_works_on_a_model_whose_latents_are_priors():
    torch.manual_seed(0)
    model = loads(PRIORS_ONLY).morphism
    guide = AutoNormalGuide(model, observed_names={"y"})
    params = list(model.parameters()) + list(guide.parameters())
    assert params, "a guide over global priors has its parameters at construction"
    optim = torch.optim.Adam(params, lr=0.05)
    svi = SVI(model, guide, optim, ELBO())
    x = torch.randn(30, 1)
    y = 2.0 * x + 0.3 * torch.randn(30, 1)
    losses = [svi.step(x, {"y": y}) for _ in range(50)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10])


PPCA = """\
composition real as algebra
object Item : FinSet 6
object Latent : FinSet 2
object Feature : FinSet 4
morphism Z : Item -> Latent [role=latent]
morphism W : Latent -> Feature [role=latent]
let mean = Z >> W
export mean
"""


def test_the_real_algebra_composes_latent_weights_as_a_matrix_product():
    model = loads(PPCA).morphism
    z, w = model._step_mean.parts[0].logits, model._step_mean.parts[1].logits
    assert torch.allclose(model.relation(), z @ w)  # signed entries: no squashing
    assert torch.allclose(model.tensor, z @ w)  # as the gallery's snippets read it
    with pytest.raises(Exception, match="real algebra"):
        model.trace(torch.arange(6))


PPCA_ROWS = PPCA.replace("composition real as algebra", "composition ppca as real").replace(
    "let mean = Z >> W\nexport mean\n",
    """let mean = Z >> W
program ppca(i) : Item -> Real 4
    sample sigma <- HalfNormal(1.0)
    let mu = mean[i]
    observe y : Real 4 <- Normal(mu, sigma)
    return y
export ppca
""",
)


def test_the_rows_of_a_real_composite_are_the_mean_of_ppca():
    torch.manual_seed(0)
    model = loads(PPCA_ROWS).morphism
    rel = model._rel_mean
    z, w = rel.parts[0].logits, rel.parts[1].logits
    items = torch.tensor([0, 3, 3, 5, 1])
    y, sigma = torch.randn(5, 4), torch.tensor(0.7)
    got = model.log_joint(items, {"y": y, "sigma": sigma})
    mean = (z @ w)[items]  # the plain matrix product, signed, read by rows
    want = D.HalfNormal(1.0).log_prob(sigma) + D.Normal(mean, sigma).log_prob(y).sum()
    assert torch.allclose(got, want)
    assert {n for n, _ in model.named_parameters()} == {
        "_rel_mean.parts.0.logits",
        "_rel_mean.parts.1.logits",
    }
    with pytest.raises(QvrDataError, match="id 6 out of range for Item"):
        model.log_joint(torch.tensor([0, 6]), {"y": y[:2], "sigma": sigma})


SCAN_EXPORT = """\
object Tok : FinSet 5
object E : Real 2
object H : Real 3
morphism emb : Tok -> E [role=embed]
morphism f : E * H -> H [role=kernel, scale=0.1] ~ Normal
let lm = emb >> scan(f)
export lm
"""


def test_a_bare_scan_export_is_a_model_that_lifts():
    from quivers.inference import bayesian_lift_parameters

    torch.manual_seed(0)
    model = loads(SCAN_EXPORT).morphism
    assert model.latent_names == ("lm",) and model.observed_names == frozenset()
    ids = torch.randint(0, 5, (4, 6))
    sites = model.trace(ids)
    traj = sites["lm"].trace
    assert tuple(traj.shape) == (4, 6, 3)
    assert torch.equal(model.rsample(ids, {"lm": traj}), traj[:, -1])  # the value h_T
    assert torch.allclose(model.log_joint(ids, {"lm": traj}), sites["lm"].log_prob.sum())
    with pytest.raises(QvrDataError, match="site 'lm': missing trace"):
        model.log_joint(ids, {})
    lifted, lx, lobs = bayesian_lift_parameters(model, ids, {"lm": traj})
    values = {**lobs, **{n: s.trace for n, s in lifted.trace(lx, lobs).items()}}
    assert torch.isfinite(lifted.log_joint(lx, values))


BIDIRECTIONAL = (ROOT / "tests/data/gallery/bidirectional_lm.qvr").read_text("utf-8")


def test_rscan_reads_the_sequence_right_to_left():
    """The bidirectional LM's density, written out by hand: the forward cell over
    t = 1..T from h_0 = 0, the backward cell over t = T..1 from g_{T+1} = 0 (the
    trajectory indexed by position), the head on [h_T; g_1]."""
    torch.manual_seed(0)
    model = loads(BIDIRECTIONAL).morphism
    x = torch.randint(0, 12, (3, 5))
    with torch.no_grad():
        sites = model.trace(x)
    hf, hb = sites["h"].trace
    y = sites["next_token"].trace
    fwd_path, bwd_path = model._step_h.parts

    def mlp(cell, v):
        first, last = cell.source.net.layers
        return last(torch.tanh(first(v)))

    e = fwd_path.parts[0].weight[x]
    lp = torch.zeros(3)
    h = torch.zeros(3, 8)
    for t in range(5):
        loc = mlp(fwd_path.parts[1].cell, torch.cat((e[:, t], h), -1))
        lp = lp + D.Normal(loc, 0.1).log_prob(hf[:, t]).sum(-1)
        h = hf[:, t]
    g = torch.zeros(3, 8)
    for t in reversed(range(5)):
        loc = mlp(bwd_path.parts[1].cell, torch.cat((e[:, t], g), -1))
        lp = lp + D.Normal(loc, 0.1).log_prob(hb[:, t]).sum(-1)
        g = hb[:, t]
    head = model._step_next_token
    logits = mlp(head, torch.cat((hf[:, -1], hb[:, 0]), -1))
    lp = lp + D.Categorical(logits=logits).log_prob(y)
    with torch.no_grad():
        got = model.log_joint(x, {"h": (hf, hb), "next_token": y})
        assert torch.allclose(got, lp.sum(), rtol=1e-5, atol=1e-4)
        assert torch.allclose(sites["h"].value, torch.cat((hf[:, -1], hb[:, 0]), -1))
        # the same trajectory read left to right has another density
        wrong = model.log_joint(x, {"h": (hf, hb.flip(1)), "next_token": y})
        assert not torch.allclose(got, wrong)


VOLATILITY = (ROOT / "tests/data/gallery/stochastic_volatility.qvr").read_text("utf-8")


def test_stochastic_volatility_has_an_ar1_log_volatility():
    """The density written out by hand: h_t - mu = phi (h_{t-1} - mu) + sigma eta_t
    from h_0 = mu, one step at a time, and r_t ~ Normal(0, exp(h_t / 2))."""
    torch.manual_seed(0)
    model = loads(VOLATILITY).morphism
    days = torch.arange(50)
    with torch.no_grad():
        sites = model.trace(days)
    mu, phi, sigma = (sites[n].trace for n in ("mu", "phi", "sigma_h"))
    eta, r = sites["eta"].trace, sites["r"].trace
    h, prev = [], mu
    for t in range(50):
        prev = mu + phi * (prev - mu) + sigma * eta[t]
        h.append(prev)
    hs = torch.stack(h)
    want = (
        D.Normal(-1.0, 1.0).log_prob(mu)
        + D.Uniform(-1.0, 1.0).log_prob(phi)
        + D.HalfNormal(0.5).log_prob(sigma)
        + D.Normal(0.0, 1.0).log_prob(eta).sum()
        + D.Normal(0.0, torch.exp(hs / 2)).log_prob(r).sum()
    )
    values = {n: s.trace for n, s in sites.items()}
    with torch.no_grad():
        assert torch.allclose(model.log_joint(days, values), want, rtol=1e-5, atol=1e-4)
    # the series is autocorrelated through phi: with phi = 0.9 and eta = e_1 only
    values = {**values, "phi": torch.tensor(0.9), "eta": torch.eye(50)[0].unsqueeze(-1)}
    assert torch.allclose(model.rsample(days, values), torch.tensor(0.9))
    trace = model.trace(days, values)
    assert trace["r"].log_prob.shape == ()


ATTENTION = (ROOT / "tests/data/gallery/attention_lm_4heads.qvr").read_text("utf-8")


def test_the_attention_lm_reads_softmax_weights_over_positions():
    """Each head's context is the softmax-over-positions average of its values,
    computed here directly with torch.softmax (not as the scan's running sums)."""
    torch.manual_seed(0)
    model = loads(ATTENTION).morphism
    x = torch.randint(0, 12, (3, 5))
    with torch.no_grad():
        sites = model.trace(x)
        relevance, content = model._step_h.parts[0].parts
        parts = []
        for j in range(4):
            s = relevance.parts[j].weight[x]  # (3, 5, 1): one score per position
            alpha = torch.softmax(s, dim=1)  # attention weights over the 5 positions
            v = content.parts[j].weight[x]  # (3, 5, 4)
            parts += [torch.exp(s).sum(1), (alpha * v).sum(1)]
        pooled = torch.cat(parts, -1)
        assert torch.allclose(sites["h"].value, pooled, atol=1e-5)
        first, last = model._step_next_token.source.net.layers
        logits = last(torch.tanh(first(pooled)))
        y = sites["next_token"].trace
        want = D.Categorical(logits=logits).log_prob(y).sum()
        got = model.log_joint(x, {"h": sites["h"].trace, "next_token": y})
        assert torch.allclose(got, want, atol=1e-4)


LINEAR_NETWORK = (ROOT / "tests/data/gallery/bayesian_linear_network.qvr").read_text("utf-8")


def test_a_lifted_real_composite_is_a_bayesian_linear_network():
    """Lifted, the weights are latents with Normal(0, 1) priors; the density is the
    priors plus the likelihood of the product W1 W2 W3, written out by hand."""
    from quivers.inference import bayesian_lift_parameters

    torch.manual_seed(0)
    model = loads(LINEAR_NETWORK).morphism
    items = torch.arange(24)
    with torch.no_grad():
        y = model.trace(items)["y"].trace
    lifted, lx, lobs = bayesian_lift_parameters(
        model, items, {"y": y}, additional_latents={"sigma": ()}
    )
    with torch.no_grad():
        sites = lifted.trace(lx, lobs)
        values = {**lobs, **{n: s.trace for n, s in sites.items()}}
        w1, w2, w3 = (values[f"_rel_network.parts.{k}.logits"] for k in range(3))
        sigma = values["sigma"]
        want = sum(D.Normal(0.0, 1.0).log_prob(w).sum() for w in (w1, w2, w3))
        want = want + D.HalfNormal(1.0).log_prob(sigma)
        want = want + D.Normal((w1 @ w2 @ w3)[items], sigma).log_prob(y).sum()
        assert torch.allclose(lifted.log_joint(lx, values), want, rtol=1e-5, atol=1e-3)
