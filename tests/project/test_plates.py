"""Plates and indexing end to end (issue 11), against densities written out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from quivers.dsl import loads
from quivers.inference import ELBO, SVI, AutoNormalGuide
from quivers.runtime.errors import QvrDataError
from quivers.semantic import check_text

EIGHT = """\
object School : FinSet 8
program eight_schools : School -> School
    sample mu <- Normal(0.0, 5.0)
    sample tau <- HalfCauchy(5.0)
    sample theta : School <- Normal(mu, tau)
    let sd = sigma + 0.0
    observe y : School <- Normal(theta, sd)
    return theta
export eight_schools
"""
Y = torch.tensor([28.0, 8, -3, 7, -1, 1, 18, 12])
SIGMA = torch.tensor([15.0, 10, 16, 11, 9, 11, 10, 18])


def test_a_plate_draws_one_value_per_element_and_scores_exactly():
    torch.manual_seed(0)
    model = loads(EIGHT).morphism
    x = torch.arange(8)
    tr = model.trace(x, {"y": Y, "sigma": SIGMA})
    assert tuple(tr["theta"].trace.shape) == (8, 1) and tr["theta"].is_global
    assert tr["y"].is_global and tr["y"].log_prob.dim() == 0
    mu, tau, theta = torch.tensor(1.5), torch.tensor(3.0), torch.randn(8)
    values = {"mu": mu, "tau": tau, "theta": theta.unsqueeze(-1), "y": Y, "sigma": SIGMA}
    want = (
        D.Normal(0.0, 5.0).log_prob(mu)
        + D.HalfCauchy(5.0).log_prob(tau)
        + D.Normal(mu, tau).log_prob(theta).sum()
        + D.Normal(theta, SIGMA).log_prob(Y).sum()
    )
    assert torch.allclose(model.log_joint(x, values), want, atol=1e-4)
    # a plate program returns what it returns: here the plate itself
    assert tuple(model.rsample(x, {"sigma": SIGMA}).shape) == (8, 1)


def test_the_signature_of_a_plate_program_records_its_return():
    text = EIGHT.replace("return theta", "return mu")
    analysis = check_text(text)
    assert analysis.diagnostics == []
    info = analysis.symbols["eight_schools"].info
    assert info.type.show() == "School -> School" and info.returns is not None
    assert info.arrow().show() == "School -> Real 1"


GROUPED = """\
object Group : FinSet 3
object X : Real 1
object Y : Real 1
program grouped(x) : X -> Y
    sample beta : Group <- Normal(0.0, 5.0)
    sample sigma <- HalfNormal(1.0)
    let b = beta[group]
    let mu = b * x
    observe y : Y <- Normal(mu, sigma)
    return y
export grouped
"""


def test_indexing_gathers_one_coefficient_per_row():
    model = loads(GROUPED).morphism
    x, group = torch.randn(6, 1), torch.tensor([0, 2, 1, 1, 0, 2])
    beta, sigma, y = torch.tensor([[0.5], [-1.0], [2.0]]), torch.tensor(0.7), torch.randn(6, 1)
    values = {"beta": beta, "sigma": sigma, "y": y, "group": group}
    want = (
        D.Normal(0.0, 5.0).log_prob(beta).sum()
        + D.HalfNormal(1.0).log_prob(sigma)
        + D.Normal(beta[group] * x, sigma).log_prob(y).sum()
    )
    assert torch.allclose(model.log_joint(x, values), want, atol=1e-5)


@pytest.mark.parametrize("ids", [[0, 3, 1, 1, 0, 2], [-1, 0, 0, 0, 0, 0]])
def test_out_of_range_ids_are_a_clear_error_naming_the_index(ids):
    model = loads(GROUPED).morphism
    with pytest.raises(QvrDataError, match="index 'group'.*outside the plate's 0..2"):
        model.trace(torch.randn(6, 1), {"group": torch.tensor(ids)})


def test_plate_models_fit_with_the_reference_recipe():
    torch.manual_seed(0)
    model = loads(EIGHT).morphism
    guide = AutoNormalGuide(model, observed_names={"y"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.05)
    svi = SVI(model, guide, optim, ELBO())
    losses = [svi.step(torch.arange(8), {"y": Y, "sigma": SIGMA}) for _ in range(60)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10])
