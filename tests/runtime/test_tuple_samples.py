"""``sample (a, b) <- k(x)``: one draw of a product, each name bound to its factor.

The log density is the draw's own (one site, named ``a_b``), checked against SciPy;
the factors flow into later steps as the columns of that one draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from quivers.dsl import loads
from quivers.runtime.errors import QvrDataError

SOURCE = """\
object X : Real 1
object A : Real 2
morphism k : X -> A * X ~ Normal(0.5, 0.75)
program p(x) : X -> X
    sample (a, b) <- k(x)
    let s = sum(a)
    observe y : X <- Normal(b, 1.0)
    observe z : X <- Normal(s, 2.0)
    return y
export p
"""


def test_a_tuple_draw_scores_as_one_site_and_splits_into_its_factors():
    torch.manual_seed(0)
    model = loads(SOURCE).morphism
    x = torch.randn(6, 1, dtype=torch.float64)
    trace = model.trace(x)
    assert set(trace.sites) == {"a_b", "y", "z"}
    draw = trace.sites["a_b"].value
    assert draw.shape == (6, 3) and trace.sites["a_b"].log_prob.shape == (6,)
    ab, y, z = draw.numpy(), np.random.default_rng(1).normal(size=(6, 1)), np.ones((6, 1))
    got = model.log_joint(
        x, {"a_b": torch.from_numpy(ab), "y": torch.from_numpy(y), "z": torch.from_numpy(z)}
    )
    want = (
        stats.norm(0.5, 0.75).logpdf(ab).sum()
        + stats.norm(ab[:, 2:3], 1.0).logpdf(y).sum()  # b: the third column
        + stats.norm(ab[:, :2].sum(-1, keepdims=True), 2.0).logpdf(z).sum()  # a: the first two
    )
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)  # the fixed parameters are float32


def test_a_tuple_draw_from_a_fan_of_kernels():
    source = """\
object X : Real 1
object P : Positive 1
morphism f : X -> X ~ Normal(0.0, 2.0)
morphism g : X -> P ~ LogNormal(0.0, 0.5)
program p(x) : X -> X
    let (m, s) <- fan(f, g)(x)
    observe y : X <- Normal(m, s)
    return y
export p
"""
    model = loads(source).morphism
    x = torch.zeros(4, 1, dtype=torch.float64)
    m = torch.tensor([[0.3], [-1.0], [2.0], [0.0]], dtype=torch.float64)
    s = torch.tensor([[0.5], [1.5], [0.2], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0], [2.1], [-0.5]], dtype=torch.float64)
    site = model.trace(x).sites["m_s"]
    # a fan's trace is the tuple of its parts' traces
    trace = (m, s) if isinstance(site.trace, tuple) else torch.cat([m, s], -1)
    got = model.log_joint(x, {"m_s": trace, "y": y})
    want = (
        stats.norm(0.0, 2.0).logpdf(m.numpy()).sum()
        + stats.lognorm(0.5, scale=1.0).logpdf(s.numpy()).sum()
        + stats.norm(m.numpy(), s.numpy()).logpdf(y.numpy()).sum()
    )
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)  # the fixed parameters are float32


def test_a_tuple_draw_of_the_wrong_shape_is_a_data_error_naming_the_site():
    model = loads(SOURCE).morphism
    x = torch.zeros(2, 1)
    with pytest.raises(QvrDataError, match="a_b"):
        model.log_joint(x, {"a_b": torch.zeros(2, 2), "y": torch.zeros(2, 1), "z": x})
