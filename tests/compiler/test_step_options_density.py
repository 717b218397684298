"""Step options at run time, from source to log density: every site's density equals
SciPy's for the same values, and each option equals the spelling it stands for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from quivers.runtime.errors import QvrDataError
from tests.compiler.helpers import load

SOURCE = """\
object Component : FinSet 3
object K : FinSet 4
object D : FinSet 2
object Rows : FinSet 6
program p : Rows -> Rows
    sample probs <- Dirichlet(1.5) [over=Component]
    sample rows : K <- Dirichlet(0.5) [over=Component, iid_over=K]
    sample w <- Normal(0.0, 2.0) [over=D, iid_over=K]
    sample z <- Normal(1.0, 3.0) [over=D]
    sample mu : K <- Normal(0.0, 1.0)
    sample sd <- HalfNormal(1.0)
    observe y <- Normal(mu, sd) [via=group]
    return probs
export p
"""

N = 6
GROUP = torch.tensor([0, 1, 3, 3, 2, 0])


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(0)
    model = load(SOURCE).morphism.to(torch.float64)
    x = torch.zeros(N, dtype=torch.long)
    y = torch.randn(N, 1, dtype=torch.float64)
    trace = model.trace(x, {"y": y, "group": GROUP})
    return model, x, y, trace


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def test_shapes_follow_the_options(run):
    _, _, _, trace = run
    assert trace["probs"].value.shape == (3,)
    assert trace["rows"].value.shape == (4, 3)
    assert trace["w"].value.shape == (4, 2)
    assert trace["z"].value.shape == (2,)
    assert trace["y"].value.shape == (N, 1)
    assert all(trace[n].is_global for n in ("probs", "rows", "w", "z", "mu", "sd"))
    assert not trace["y"].is_global and trace["y"].log_prob.shape == (N,)


def test_over_draws_one_symmetric_dirichlet(run):
    _, _, _, trace = run
    v = _np(trace["probs"].value)
    assert np.isclose(v.sum(), 1.0)
    expected = stats.dirichlet.logpdf(v, [1.5, 1.5, 1.5])
    assert float(trace["probs"].log_prob) == pytest.approx(expected, rel=1e-9)


def test_over_with_iid_over_draws_one_simplex_per_element(run):
    _, _, _, trace = run
    v = _np(trace["rows"].value)
    expected = sum(stats.dirichlet.logpdf(r, [0.5] * 3) for r in v)
    assert float(trace["rows"].log_prob) == pytest.approx(expected, rel=1e-9)


def test_over_on_a_scalar_family_is_independent_coordinates(run):
    _, _, _, trace = run
    w, z = _np(trace["w"].value), _np(trace["z"].value)
    assert float(trace["w"].log_prob) == pytest.approx(stats.norm.logpdf(w, 0, 2).sum())
    assert float(trace["z"].log_prob) == pytest.approx(stats.norm.logpdf(z, 1, 3).sum())


def test_via_reads_the_plate_at_each_rows_id(run):
    _, _, y, trace = run
    mu = _np(trace["mu"].value)[:, 0]
    sd = float(trace["sd"].value)
    expected = stats.norm.logpdf(_np(y)[:, 0], mu[GROUP.numpy()], sd)
    assert np.allclose(_np(trace["y"].log_prob), expected)


def test_log_joint_is_the_sum_of_the_sites(run):
    model, x, y, trace = run
    values = {name: site.trace for name, site in trace.items()} | {"group": GROUP}
    total = sum(float(site.log_prob.sum()) for site in trace.values())
    assert float(model.log_joint(x, values)) == pytest.approx(total, rel=1e-9)


def _log_joint(source: str, values: dict[str, torch.Tensor], x: torch.Tensor) -> float:
    model = load(source).morphism.to(torch.float64)
    return float(model.log_joint(x, values))


def test_each_option_equals_the_spelling_it_stands_for():
    """`[iid_over=K]` is the plate annotation, `[over=D]` the width annotation, and
    `[via=g]` the indexing `mu[g]`: equal densities at equal values."""
    head = "object K : FinSet 4\nobject D : FinSet 2\nobject Rows : FinSet 6\n"
    head += "program p : Rows -> Rows\n"
    ours = head + (
        "    sample mu : K <- Normal(0.0, 1.0)\n"
        "    sample z : Real 2 <- Normal(0.0, 1.0)\n"
        "    sample c : Simplex 2 <- Dirichlet(2.0)\n"
        "    let m = mu[g]\n"
        "    observe y <- Normal(m, 0.7)\n"
        "    return y\nexport p\n"
    )
    options = head + (
        "    sample mu <- Normal(0.0, 1.0) [iid_over=K]\n"
        "    sample z <- Normal(0.0, 1.0) [over=D]\n"
        "    sample c <- Dirichlet(2.0) [over=D]\n"
        "    observe y <- Normal(mu, 0.7) [via=g]\n"
        "    return y\nexport p\n"
    )
    torch.manual_seed(3)
    values = {
        "mu": torch.randn(4, 1, dtype=torch.float64),
        "z": torch.randn(2, dtype=torch.float64),
        "c": torch.tensor([0.3, 0.7], dtype=torch.float64),
        "y": torch.randn(N, 1, dtype=torch.float64),
        "g": GROUP,
    }
    x = torch.zeros(N, dtype=torch.long)
    assert _log_joint(options, values, x) == pytest.approx(_log_joint(ours, values, x), rel=1e-12)


def test_via_ids_outside_the_plate_are_a_data_error(run):
    model, x, y, _ = run
    with pytest.raises(QvrDataError, match="index 'group' has ids 0..4, outside the plate's 0..3"):
        model.trace(x, {"y": y, "group": torch.tensor([0, 1, 2, 3, 4, 0])})


def test_missing_via_ids_are_named(run):
    model, x, y, _ = run
    with pytest.raises(QvrDataError, match="missing host data 'group'"):
        model.trace(x, {"y": y})
