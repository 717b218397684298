"""Floats holding ids, as the published gallery's snippets pass them (issue 11/12).

The gallery's Try-it blocks give a plate program ``x_in = torch.zeros(N, 1)`` (float32,
one row per element of the plate) and sometimes float index columns
(``out_idx.float()``). Floats holding whole numbers are the same ids: the runs equal
those with int64 ids and a density written out by hand; any other float is one
``QvrDataError`` naming the key, the set, the dtype and the value.
"""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from quivers.dsl import loads
from quivers.inference import ELBO, MCMC, SVI, AutoNormalGuide, NUTSKernel
from quivers.runtime.errors import QvrDataError

# the published pages' idiom: a flat response plate, coefficients per output read
# through host ids, the predictor as host data
REGRESSION = """\
object Out : FinSet 3
object Resp : FinSet 12
program regression : Resp -> Resp
    sample b0 : Out <- Normal(0.0, 5.0)
    sample b1 : Out <- Normal(0.0, 5.0)
    sample sigma <- HalfCauchy(1.0)
    let mu = b0[out_idx] + b1[out_idx] * x
    observe y : Resp <- Normal(mu, sigma)
    return b1
export regression
"""
OUT_IDX = torch.arange(3).repeat(4)


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, generator=g)
    y = 0.5 + torch.tensor([1.0, -1.5, 0.8])[OUT_IDX] * x + 0.3 * torch.randn(12, generator=g)
    return {"x": x, "y": y, "out_idx": OUT_IDX}


@pytest.mark.parametrize(
    ("x_in", "ids"),
    [
        (torch.zeros(12, 1), OUT_IDX),  # the pages' x_in
        (torch.zeros(12), OUT_IDX.float()),
        (torch.arange(12.0).unsqueeze(-1), OUT_IDX.double()),
        (torch.zeros(12, 1, dtype=torch.float64), OUT_IDX.float().unsqueeze(-1)),
    ],
)
def test_floats_holding_ids_score_like_int64_ids_and_the_density_by_hand(x_in, ids):
    model = loads(REGRESSION).morphism
    b0, b1, sigma = torch.tensor([0.2, -0.4, 1.0]), torch.tensor([0.9, -1.2, 0.5]), 0.4
    data = _data()
    values = {"b0": b0.unsqueeze(-1), "b1": b1.unsqueeze(-1), "sigma": torch.tensor(sigma)}
    want = (
        D.Normal(0.0, 5.0).log_prob(b0).sum()
        + D.Normal(0.0, 5.0).log_prob(b1).sum()
        + D.HalfCauchy(1.0).log_prob(torch.tensor(sigma))
        + D.Normal(b0[OUT_IDX] + b1[OUT_IDX] * data["x"], sigma).log_prob(data["y"]).sum()
    )
    got = model.log_joint(x_in, {**data, **values, "out_idx": ids})
    assert torch.allclose(got, want, atol=1e-4)
    ints = model.log_joint(torch.arange(12), {**data, **values})
    assert torch.equal(got, ints)


def test_a_float_input_draws_the_same_trace_as_its_ids():
    model = loads(REGRESSION).morphism
    host = {k: v for k, v in _data().items() if k != "y"}
    torch.manual_seed(3)
    floats = model.trace(torch.zeros(12, 1), {**host, "out_idx": OUT_IDX.float()})
    torch.manual_seed(3)
    ints = model.trace(torch.zeros(12, 1, dtype=torch.long), host)
    assert list(floats) == list(ints)
    for name in ints:
        assert torch.equal(floats[name].trace, ints[name].trace), name


def test_the_pages_svi_and_nuts_blocks_run_on_float_zeros():
    torch.manual_seed(1)
    model = loads(REGRESSION).morphism
    data, x_in = _data(), torch.zeros(12, 1)
    guide = AutoNormalGuide(model, observed_names={"x", "y", "out_idx"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=5e-2)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    losses = [svi.step(x_in, data) for _ in range(25)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10])
    torch.manual_seed(2)
    kernel = NUTSKernel(step_size=0.05, max_tree_depth=2, target_accept=0.8)
    result = MCMC(kernel, num_warmup=6, num_samples=6, num_chains=1).run(model, x_in, data)
    assert set(result.samples) == {"b0", "b1", "sigma"}
    assert all(bool(torch.isfinite(s).all()) for s in result.samples.values())


@pytest.mark.parametrize(
    ("x_in", "ids", "message"),
    [
        (
            torch.full((12, 1), 0.5),
            OUT_IDX,
            r"program 'regression' input: expected int64 ids of Resp .*got float32 of "
            r"shape \(12, 1\) holding 0.5, not an id",
        ),
        (
            torch.full((12, 1), 12.0),
            OUT_IDX,
            r"program 'regression' input: id 12 out of range for Resp \(expected 0..11\), "
            r"given float32 of shape \(12, 1\)",
        ),
        (
            torch.zeros(12, 1),
            OUT_IDX + 0.25,
            r"host data 'out_idx': expected int64 ids of FinSet 3 .*got float32 of shape "
            r"\(12,\) holding 0.25, not an id",
        ),
        (
            torch.zeros(12, 1),
            OUT_IDX * 2.0,
            r"host data 'out_idx': id 4 out of range for FinSet 3 \(expected 0..2\), given "
            r"float32 of shape \(12,\)",
        ),
        (
            torch.zeros(12, 1),
            OUT_IDX.float().masked_fill(OUT_IDX == 1, float("nan")),
            r"host data 'out_idx': expected int64 ids of FinSet 3 .*holding nan, not an id",
        ),
    ],
)
def test_floats_that_are_not_ids_are_one_clear_error(x_in, ids, message):
    model = loads(REGRESSION).morphism
    with pytest.raises(QvrDataError, match=message):
        model.trace(x_in, {**_data(), "out_idx": ids})
