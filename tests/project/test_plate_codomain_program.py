"""The published gamma-regression page's program, ``gamma_regression : Resp -> Val``
returning the plate ``beta_1`` (one ``Val`` per category), as
``tests/data/gallery/gamma_component_totals.qvr`` writes it: its density is the hand
written one, it returns the drawn plate, a fit recovers known parameters, and data of
another size than its plate is one clear error (docs/language.md 10.3.1, 10.7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from torch import distributions as D

from quivers.dsl import loads
from quivers.inference import ELBO, SVI, AutoNormalGuide
from quivers.runtime.errors import QvrDataError

from .helpers import ROOT

SOURCE = (ROOT / "tests/data/gallery/gamma_component_totals.qvr").read_text("utf-8")
TRUE_B0 = torch.tensor([1.0, 0.5, -0.5])
TRUE_B1 = torch.tensor([0.8, -1.0, 0.3])


def _program(items: int = 21):
    """The program with ``items`` items of three categories (the page has 21)."""
    text = SOURCE.replace("FinSet 63", f"FinSet {3 * items}")
    return loads(text.replace("FinSet 21", f"FinSet {items}")).morphism


def _data(items: int, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The page's synthetic data: the categories cycle, x is standard Normal."""
    gen = torch.Generator().manual_seed(seed)
    cells = 3 * items
    cat_idx = torch.arange(3).repeat(items)
    x = torch.randn(cells, generator=gen)
    shape = torch.exp(TRUE_B0[cat_idx] + TRUE_B1[cat_idx] * x)
    tally = torch._standard_gamma(shape, generator=gen)  # Gamma(shape, 1)
    return torch.zeros(cells, 1), {"x": x, "tally": tally, "cat_idx": cat_idx}


def test_log_joint_is_the_hand_written_density():
    model = _program()
    x_in, obs = _data(21)
    b0, b1 = torch.tensor([0.3, -0.2, 0.9]), torch.tensor([-0.4, 1.1, 0.05])
    values = {**obs, "beta_0": b0.reshape(3, 1), "beta_1": b1.reshape(3, 1)}
    shape = torch.exp(b0[obs["cat_idx"]] + b1[obs["cat_idx"]] * obs["x"])
    want = D.Normal(0.0, 2.0).log_prob(torch.cat([b0, b1])).sum()
    want = want + D.Gamma(shape, 1.0).log_prob(obs["tally"]).sum()
    got = model.log_joint(x_in, values)
    assert got.dim() == 0
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-4), (float(got), float(want))


def test_it_returns_the_drawn_slopes_one_value_per_category():
    model = _program()
    x_in, obs = _data(21)
    torch.manual_seed(3)
    returned = model.rsample(x_in, obs)
    torch.manual_seed(3)
    trace = model.trace(x_in, obs)
    assert tuple(returned.shape) == (3, 1)
    assert torch.equal(returned, trace["beta_1"].value)
    assert not torch.equal(returned, trace["beta_0"].value)


def test_data_of_another_size_than_the_plate_names_the_site_the_set_and_both_sizes():
    # the page's NUTS block passes 11 items (33 cells) to the 63-cell program
    model = _program()
    _, obs = _data(11)
    with pytest.raises(QvrDataError) as err:
        model.trace(torch.zeros(33, 1), obs)
    msg = str(err.value)
    assert msg.startswith("site 'tally': a plate over Resp (FinSet 63)"), msg
    assert "33 rows" in msg and "`object Resp : FinSet 33`" in msg


def _map_estimate(obs: dict[str, torch.Tensor]) -> np.ndarray:
    """The posterior mode, by SciPy on the density written out with scipy.stats."""
    x, tally = obs["x"].double().numpy(), obs["tally"].double().numpy()
    cat = obs["cat_idx"].numpy()

    def neg_log_post(theta: np.ndarray) -> float:
        shape = np.exp(theta[:3][cat] + theta[3:][cat] * x)
        prior = stats.norm(0.0, 2.0).logpdf(theta).sum()
        return -(prior + stats.gamma(shape).logpdf(tally).sum())

    return optimize.minimize(neg_log_post, np.zeros(6), method="BFGS").x


@pytest.mark.slow
def test_a_short_fit_recovers_the_parameters():
    """150 SVI steps on 200 items (600 cells): the guide's medians are within 0.08 of
    the SciPy posterior mode, which is within 0.15 of the true values (the posterior
    sds are about 0.03 to 0.06 here)."""
    model = _program(200)
    x_in, obs = _data(200)
    torch.manual_seed(1)
    guide = AutoNormalGuide(model, observed_names={"x", "tally", "cat_idx"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.1)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    for _ in range(150):
        svi.step(x_in, obs)
    median = guide.median()
    fitted = torch.cat([median["beta_0"].reshape(-1), median["beta_1"].reshape(-1)])
    mode = _map_estimate(obs)
    truth = torch.cat([TRUE_B0, TRUE_B1]).numpy()
    assert np.abs(mode - truth).max() < 0.15, (mode, truth)
    assert np.abs(fitted.double().numpy() - mode).max() < 0.08, (fitted, mode)
