"""The gallery's families (issue 11): kernels and inline draws against SciPy.

Every density is compared with an independent one: SciPy's ``logpdf``/``logpmf``
where SciPy has the family, else the textbook formula written out in NumPy. Draws
must lie in the support the site reports (guides and MCMC unconstrain through it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from irkit import fin, module, morph, real
from scipy import stats

from quivers.core.families import FAMILIES
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.families import lower_cholesky
from quivers.runtime.kernels import InlineFamily

# options fixing the parameters a kernel cannot learn
FIXED = {
    "Uniform": {"low": -1.0, "high": 2.0},
    "TruncatedNormal": {"low": -1.0, "high": 2.0},
    "Pareto": {"scale": 1.5},
    "GeneralizedPareto": {"loc": 0.5, "concentration": 0.2},
    "Binomial": {"total_count": 6.0},
    "BetaBinomial": {"total_count": 6.0},
    "RelaxedBernoulli": {"temperature": 0.7},
}


def _nb(k, r, p):  # torch's convention: successes (prob p) before r failures
    return stats.nbinom.logpmf(k, r, 1.0 - p)


def _kumaraswamy(x, a, b):
    return np.log(a) + np.log(b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-(x**a))


def _continuous_bernoulli(x, p):
    # normalising constant 2 atanh(1 - 2p) / (1 - 2p) (Loaiza-Ganem and Cunningham, 2019)
    c = np.where(np.abs(p - 0.5) < 1e-4, 2.0, 2.0 * np.arctanh(1 - 2 * p) / (1 - 2 * p))
    return np.log(c) + x * np.log(p) + (1 - x) * np.log1p(-p)


def _relaxed_bernoulli(y, t, p):
    # binary Concrete density (Maddison et al., 2017, eq. 21) with alpha = p / (1 - p)
    la = np.log(p) - np.log1p(-p)
    num = np.log(t) + la + (-t - 1) * (np.log(y) + np.log1p(-y))
    den = 2 * np.logaddexp(la - t * np.log(y), -t * np.log1p(-y))
    return num - den


# family -> (x, *params) -> per-element log density (parameters in the family's order)
SCIPY = {
    "Uniform": lambda x, lo, hi: stats.uniform.logpdf(x, lo, hi - lo),
    "HalfCauchy": lambda x, s: stats.halfcauchy.logpdf(x, scale=s),
    "Cauchy": lambda x, m, s: stats.cauchy.logpdf(x, m, s),
    "HalfStudentT": lambda x, df, s: math.log(2.0) + stats.t.logpdf(x, df, scale=s),
    "InverseGamma": lambda x, a, b: stats.invgamma.logpdf(x, a, scale=b),
    "Weibull": lambda x, s, k: stats.weibull_min.logpdf(x, k, scale=s),
    "Laplace": lambda x, m, s: stats.laplace.logpdf(x, m, s),
    "Logistic": lambda x, m, s: stats.logistic.logpdf(x, m, s),
    "Gumbel": lambda x, m, s: stats.gumbel_r.logpdf(x, m, s),
    "Pareto": lambda x, s, a: stats.pareto.logpdf(x, a, scale=s),
    "GeneralizedPareto": lambda x, m, s, c: stats.genpareto.logpdf(x, c, m, s),
    "Kumaraswamy": _kumaraswamy,
    "Chi": lambda x, df: stats.chi.logpdf(x, df),
    "FisherSnedecor": lambda x, d1, d2: stats.f.logpdf(x, d1, d2),
    "TruncatedNormal": lambda x, m, s, lo, hi: stats.truncnorm.logpdf(
        x, (lo - m) / s, (hi - m) / s, m, s
    ),
    "NegativeBinomial": _nb,
    "BetaBinomial": lambda k, a, b, n: stats.betabinom.logpmf(k, n, a, b),
    "Binomial": lambda k, n, p: stats.binom.logpmf(k, n, p),
    "ContinuousBernoulli": _continuous_bernoulli,
    "RelaxedBernoulli": _relaxed_bernoulli,
}
SCALAR_NEW = sorted(SCIPY)


def test_the_gallery_families_are_all_there():
    wanted = set(SCIPY) | {"MultivariateNormal", "MatrixNormal", "LKJCholesky"}
    assert wanted <= set(FAMILIES) and len(wanted) == 23


def _constrained(layout, raw):
    """The kernel's parameters recomputed from its raw outputs (softplus/sigmoid)."""
    chunks = raw.split(layout.widths, -1)
    out = dict(layout.fixed)
    for p, r in zip(layout.free, chunks, strict=True):
        if p.matrix:
            out[p.name] = lower_cholesky(r, layout.width)
        elif p.domain == "positive":
            out[p.name] = F.softplus(r)
        elif p.domain == "unit":
            out[p.name] = torch.sigmoid(r)
        else:
            out[p.name] = r
    return out


@pytest.mark.parametrize("name", SCALAR_NEW)
def test_kernel_density_matches_scipy(name):
    torch.manual_seed(0)
    decl = morph("k", real(2), real(3), "kernel", name, fixed=FIXED.get(name, {}))
    k = module(decl).morphisms["k"].double()
    x = torch.randn(40, 2, dtype=torch.float64)
    trace, _, lp = k.sample_with_log_prob(x)
    assert trace.shape == (40, 3) and lp.shape == (40,)
    assert bool(k.support().check(trace).all()), "draws outside the support"
    raw = k.source(x).detach() if k.source is not None else x[:, :0]
    params = _constrained(k.layout, raw)
    args = [params[p.name] for p in FAMILIES[name].params]
    args = [a.numpy() if isinstance(a, torch.Tensor) else a for a in args]
    want = SCIPY[name](trace.detach().numpy(), *args).sum(-1)
    assert np.allclose(lp.detach().numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", SCALAR_NEW)
def test_inline_density_matches_scipy(name):
    torch.manual_seed(1)
    constants = {
        "Uniform": (-1.0, 2.0),
        "TruncatedNormal": (0.3, 1.2, -1.0, 2.0),
        "GeneralizedPareto": (0.5, 1.3, -0.25),  # bounded above by loc + 4 * scale
        "Binomial": (6.0, 0.3),
        "BetaBinomial": (2.0, 3.0, 6.0),
        "RelaxedBernoulli": (0.7, 0.3),
        "NegativeBinomial": (4.0, 0.4),
        "ContinuousBernoulli": (0.3,),
        "Kumaraswamy": (2.0, 3.0),
    }.get(name)
    if constants is None:
        constants = tuple(1.7 - 0.4 * i for i in range(FAMILIES[name].arity))
    node = InlineFamily(name, len(constants), real(1), True, constants).double()
    draws = torch.stack([node.rsample() for _ in range(200)])
    site_support = node.support_at(None)
    assert bool(site_support.check(draws).all()), "draws outside the support"
    lp = torch.stack([node.log_prob(d) for d in draws])
    want = SCIPY[name](draws.numpy(), *constants)
    assert np.allclose(lp.numpy(), want, rtol=1e-6, atol=1e-6)


def test_multivariate_normal_kernel_matches_scipy():
    torch.manual_seed(0)
    k = module(morph("k", real(2), real(3), "kernel", "MultivariateNormal")).morphisms["k"]
    k = k.double()
    x = torch.randn(10, 2, dtype=torch.float64)
    trace, _, lp = k.sample_with_log_prob(x)
    params = _constrained(k.layout, k.source(x).detach())
    for i in range(10):
        L = params["scale_tril"][i].numpy()
        want = stats.multivariate_normal.logpdf(
            trace[i].detach().numpy(), params["loc"][i].numpy(), L @ L.T
        )
        assert math.isclose(lp[i].item(), want, rel_tol=1e-6, abs_tol=1e-6)


def test_matrix_normal_matches_scipy():
    torch.manual_seed(0)
    m = torch.randn(3, 2, dtype=torch.float64)
    lr = torch.tensor([[1.0, 0, 0], [0.3, 0.8, 0], [-0.2, 0.1, 1.5]], dtype=torch.float64)
    lc = torch.tensor([[0.7, 0], [0.4, 1.1]], dtype=torch.float64)
    node = InlineFamily("MatrixNormal", 3, real(2), True).double()
    draw = node.rsample((m, lr, lc))
    assert draw.shape == (3, 2)
    want = stats.matrix_normal.logpdf(
        draw.numpy(), m.numpy(), (lr @ lr.T).numpy(), (lc @ lc.T).numpy()
    )
    assert math.isclose(node.log_prob((m, lr, lc), draw).item(), want, rel_tol=1e-9)


def test_lkj_cholesky_takes_its_dimension_from_the_value_type():
    torch.manual_seed(0)
    node = InlineFamily("LKJCholesky", 1, real(4), True, (2.0,))
    draw = node.rsample()
    assert draw.shape == (4, 4)
    corr = draw @ draw.T
    assert torch.allclose(corr.diagonal(), torch.ones(4), atol=1e-5)
    assert bool(node.support_at(None).check(draw))
    # the LKJ density of a Cholesky factor (Lewandowski et al. 2009, as torch computes it)
    assert torch.isfinite(node.log_prob(draw))


@pytest.mark.parametrize("name", ["Binomial", "Uniform", "Pareto"])
def test_a_kernel_cannot_learn_a_bound_or_a_count(name):
    with pytest.raises(QvrBuildError, match="fix it with"):
        module(morph("k", real(2), real(3), "kernel", name))


@pytest.mark.parametrize("name", ["MatrixNormal", "LKJCholesky"])
def test_matrix_families_are_inline_only(name):
    with pytest.raises(QvrBuildError, match="inline"):
        module(morph("k", real(2), real(3), "kernel", name))


def test_a_continuous_draw_never_becomes_ids():
    with pytest.raises(QvrBuildError, match="never become ids"):
        InlineFamily("Normal", 2, fin(3), True, (0.0, 1.0))
