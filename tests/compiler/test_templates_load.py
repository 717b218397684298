"""Template programs from Python: values at load (`loads(text, alpha=1.5, K=3)`) or at
call time (`prog.gmm(alpha=1.5, K=3)`); the instance is exactly the program with the
values written in, and a missing, unknown or ill-typed value is one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from quivers.compiler import QvrCompileError
from quivers.compiler.templates import TemplateArgumentError
from quivers.dsl import load, loads

GMM = (Path(__file__).resolve().parents[1] / "data" / "templates" / "gmm.qvr").read_text(
    encoding="utf-8"
)
# the same program with alpha = 1.5 and K = 3 written in
WRITTEN = """\
object Rows : FinSet 6
object K : FinSet 3
program gmm : Rows -> Rows
    sample probs : Simplex 3 <- Dirichlet(1.5)
    sample mu : K <- Normal(0.0, 5.0)
    sample sd <- HalfNormal(1.0)
    let m = mu[g]
    observe y <- Normal(m, sd)
    return probs
export gmm
"""
X = torch.zeros(6, dtype=torch.long)
G = torch.tensor([0, 1, 2, 0, 1, 2])


def _values() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "probs": torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64),
        "mu": torch.randn(3, 1, dtype=torch.float64),
        "sd": torch.tensor(0.8, dtype=torch.float64),
        "y": torch.randn(6, 1, dtype=torch.float64),
        "g": G,
    }


def test_values_at_load_and_at_call_time_give_the_written_program():
    values = _values()
    at_load = loads(GMM, alpha=1.5, K=3).morphism.to(torch.float64)
    at_call = loads(GMM).gmm(alpha=1.5, K=3).morphism.to(torch.float64)
    written = loads(WRITTEN).morphism.to(torch.float64)
    expected = float(written.log_joint(X, values))
    assert float(at_load.log_joint(X, values)) == pytest.approx(expected, rel=1e-12)
    assert float(at_call.log_joint(X, values)) == pytest.approx(expected, rel=1e-12)


def test_the_instance_density_is_scipys():
    values = _values()
    model = loads(GMM, alpha=1.5, K=3).morphism.to(torch.float64)
    trace = model.trace(X, values)
    probs = values["probs"].numpy()
    assert float(trace["probs"].log_prob) == pytest.approx(
        stats.dirichlet.logpdf(probs, [1.5] * 3), rel=1e-9
    )
    mu = values["mu"].numpy()[:, 0]
    y = stats.norm.logpdf(values["y"].numpy()[:, 0], mu[G.numpy()], 0.8)
    assert np.allclose(trace["y"].log_prob.numpy(), y)


def test_the_size_shapes_the_draws():
    for k in (2, 5):
        trace = (
            loads(GMM).gmm(alpha=1.0, K=k).morphism.trace(X, {"y": torch.randn(6, 1), "g": G % k})
        )
        assert trace["probs"].value.shape == (k,)
        assert trace["mu"].value.shape == (k, 1)


def test_a_template_without_values_has_no_morphism_yet():
    prog = loads(GMM)
    with pytest.raises(AttributeError, match=r"gmm\(alpha : Positive, K : FinSet\) is a template"):
        _ = prog.morphism
    assert "template program gmm(alpha : Positive, K : FinSet)" in repr(prog.gmm)
    # run-time arguments are the compiled model's: a template's values are not among them
    with pytest.raises(TemplateArgumentError, match=r"prog\.gmm\(alpha=\.\.\., K=\.\.\.\)"):
        prog(alpha=1.0, K=3)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"alpha": 1.0}, "parameter K : FinSet is not given"),
        ({"alpha": -1.0, "K": 3}, "'alpha : Positive' takes a number > 0, got -1.0 (float)"),
        ({"alpha": 1.0, "K": 2.5}, "'K : FinSet' takes a finite set, given by its size"),
        ({"alpha": 1.0, "K": 0}, "got 0 (int)"),
        ({"alpha": "1.0", "K": 3}, "got '1.0' (str)"),
        ({"alpha": 1.0, "K": 3, "alhpa": 2.0}, "no parameter 'alhpa'"),
    ],
)
def test_a_bad_call_names_the_parameter_and_its_kind(values: dict, words: str):
    with pytest.raises(TemplateArgumentError) as caught:
        loads(GMM).gmm(**values)
    assert words in str(caught.value)
    assert "gmm(alpha : Positive, K : FinSet)" in str(caught.value) or "alhpa" in str(caught.value)


def test_an_unknown_value_at_load_suggests_the_parameter():
    with pytest.raises(TemplateArgumentError, match="did you mean 'alpha'"):
        loads(GMM, alpah=1.0)


def test_a_value_outside_a_familys_domain_is_a_compile_error():
    text = GMM.replace("alpha : Positive", "alpha : Real")
    with pytest.raises(QvrCompileError, match=r"E0313.*parameter 'alpha'"):
        loads(text, alpha=-2.0, K=3)


def test_load_passes_values(tmp_path):
    path = tmp_path / "gmm.qvr"
    path.write_text(GMM, encoding="utf-8")
    assert load(path, alpha=2.0, K=4).morphism.trace(X, {"y": torch.randn(6, 1), "g": G})[
        "probs"
    ].value.shape == (4,)


def test_number_parameters_reach_arithmetic_and_global_draws():
    text = """\
object Rows : FinSet 3
program shifted(m : Real, s : Positive) : Rows -> Rows
    sample v <- Normal(m, s)
    let w = v + m
    return w
export shifted
"""
    model = loads(text, m=2.0, s=0.5).morphism.to(torch.float64)
    sites = model.global_trace()
    assert sites is not None and sites["v"].is_global
    v = torch.tensor(1.7, dtype=torch.float64)
    lj = float(model.log_joint(torch.zeros(3, dtype=torch.long), {"v": v}))
    assert lj == pytest.approx(stats.norm.logpdf(1.7, 2.0, 0.5))
    out = model.rsample(torch.zeros(3, dtype=torch.long), {"v": v})
    assert float(out) == pytest.approx(3.7)
