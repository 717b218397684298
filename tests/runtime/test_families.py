"""Every family: draws lie in its support; densities equal torch.distributions'."""

import pytest
import torch
import torch.nn.functional as F
from irkit import fin, module, morph, real
from torch import distributions as D

from quivers.core.families import FAMILIES
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.ir import SpaceT


def _cod(name):
    if name in ("Categorical",):
        return fin(5)
    if name == "Dirichlet":
        return SpaceT("simplex", 4)
    return real(3)


def _reference(name, raw, width):
    """The torch distribution the kernel should be, from its raw parameters."""
    chunks = raw.split(width, -1)
    sp = F.softplus
    if name == "Normal":
        return D.Independent(D.Normal(chunks[0], sp(chunks[1])), 1)
    if name == "LogNormal":
        return D.Independent(D.LogNormal(chunks[0], sp(chunks[1])), 1)
    if name == "HalfNormal":
        return D.Independent(D.HalfNormal(sp(chunks[0])), 1)
    if name == "Exponential":
        return D.Independent(D.Exponential(sp(chunks[0])), 1)
    if name == "Gamma":
        return D.Independent(D.Gamma(sp(chunks[0]), sp(chunks[1])), 1)
    if name == "Beta":
        return D.Independent(D.Beta(sp(chunks[0]), sp(chunks[1])), 1)
    if name == "LogitNormal":
        base = D.Normal(chunks[0], sp(chunks[1]))
        return D.Independent(D.TransformedDistribution(base, [D.SigmoidTransform()]), 1)
    if name == "Bernoulli":
        return D.Independent(D.Bernoulli(probs=torch.sigmoid(chunks[0])), 1)
    if name == "Categorical":
        return D.Categorical(probs=torch.softmax(chunks[0], -1))
    if name == "Poisson":
        return D.Independent(D.Poisson(sp(chunks[0])), 1)
    if name == "Dirichlet":
        return D.Dirichlet(sp(chunks[0]))
    if name == "StudentT":
        return D.Independent(D.StudentT(sp(chunks[0]), chunks[1], sp(chunks[2])), 1)
    raise AssertionError(name)


# the families of the first release; the gallery's are in test_gallery_families.py
FIRST = [
    "Normal",
    "LogNormal",
    "HalfNormal",
    "Exponential",
    "Gamma",
    "Beta",
    "LogitNormal",
    "Bernoulli",
    "Categorical",
    "Poisson",
    "Dirichlet",
    "StudentT",
]


def test_the_first_families_are_still_there():
    assert set(FIRST) <= set(FAMILIES)


@pytest.mark.parametrize("name", FIRST)
@pytest.mark.parametrize("source", ["continuous", "table"])
def test_family_support_and_density(name, source):
    dom = real(2) if source == "continuous" else fin(6)
    k = module(morph("k", dom, _cod(name), "kernel", name)).morphisms["k"]
    x = torch.randn(50, 2) if source == "continuous" else torch.randint(0, 6, (50,))
    trace, value, lp = k.sample_with_log_prob(x)
    assert torch.equal(trace, value) and lp.shape == (50,)
    assert bool(k.support().check(trace).all())
    raw = k.source(x)
    ref = _reference(name, raw, k.layout.width)
    v = trace.float() if name in ("Bernoulli",) else trace
    assert torch.allclose(lp, ref.log_prob(v), rtol=1e-5, atol=1e-5)
    assert torch.allclose(k.log_prob(x, trace), lp)


def test_categorical_values_are_ids():
    k = module(morph("k", real(2), fin(7), "kernel", "Categorical")).morphisms["k"]
    y = k.rsample(torch.randn(9, 2))
    assert y.shape == (9,) and y.dtype == torch.int64


def test_fixed_parameter_is_a_constant():
    k = module(morph("k", real(2), real(3), "kernel", "Normal", fixed={"scale": 0.1})).morphisms[
        "k"
    ]
    x = torch.randn(4, 2)
    assert k.layout.n_raw == 3  # only loc is learned
    y = k.rsample(x)
    loc = k.source(x)
    want = D.Independent(D.Normal(loc, 0.1), 1).log_prob(y)
    assert torch.allclose(k.log_prob(x, y), want, rtol=1e-5)


def test_linear_and_mlp_sources():
    from quivers.runtime.ir import ParamSource

    lin = module(
        morph("k", real(2), real(3), "kernel", "Normal", param_source=ParamSource("linear"))
    )
    assert len(lin.morphisms["k"].source.net.layers) == 1
    deep = module(
        morph("k", real(2), real(3), "kernel", "Normal", param_source=ParamSource("mlp", (8, 5)))
    )
    shapes = [tuple(layer.weight.shape) for layer in deep.morphisms["k"].source.net.layers]
    assert shapes == [(8, 2), (5, 8), (6, 5)]


def test_mixed_product_domain_is_one_hot_encoded():
    from irkit import prod

    k = module(morph("k", prod(fin(3), real(2)), real(1), "kernel", "Normal")).morphisms["k"]
    x = torch.cat([torch.tensor([[0.0], [2.0]]), torch.randn(2, 2)], -1)
    assert k.source.net.layers[0].weight.shape[1] == 5
    assert k.rsample(x).shape == (2, 1)


def test_unknown_family_is_a_build_error():
    with pytest.raises(QvrBuildError):
        module(morph("k", real(2), real(3), "kernel", "Nromal"))


def test_poisson_at_rate_zero_is_the_point_mass_with_finite_gradients():
    """A zero-inflated model's off branch: Poisson(rate * 0). log p(0) = -rate and
    log p(k > 0) = -inf, with gradients -1 and 0 (torch's xlogy gives NaN and inf)."""
    stats = pytest.importorskip("scipy.stats")
    from quivers.runtime.distributions import Poisson

    rate = torch.tensor([0.0, 0.0, 0.0, 0.5, 3.0, 3.0], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0.0, 1.0, 4.0, 0.0, 2.0, 7.0], dtype=torch.float64)
    lp = Poisson(rate).log_prob(k)
    want = torch.tensor(stats.poisson.logpmf(k.numpy(), rate.detach().numpy()))
    assert torch.equal(torch.isinf(lp), torch.isinf(want))
    finite = torch.isfinite(want)
    assert torch.allclose(lp[finite], want[finite])
    lp[finite].sum().backward()
    assert rate.grad is not None and bool(torch.isfinite(rate.grad).all())
    # d/d rate of k log rate - rate is k / rate - 1; -1 at rate 0 for k = 0
    assert torch.allclose(
        rate.grad, torch.tensor([-1.0, 0, 0, -1.0, 2 / 3 - 1, 7 / 3 - 1], dtype=torch.float64)
    )
    # the -inf branches carry no NaN into a logsumexp over both (the mixture's case)
    rate.grad = None
    both = torch.logsumexp(
        torch.stack([Poisson(rate).log_prob(k), torch.zeros(6, dtype=torch.float64)]), 0
    )
    both.sum().backward()
    assert bool(torch.isfinite(rate.grad).all())
