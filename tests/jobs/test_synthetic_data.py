"""Synthetic data follow the program's declared inputs: a plate program has one row
per element of its set, host ids lie in their set, host scales are positive."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quivers.dsl import load, loads
from quivers.jobs.data import HostKind, host_kinds, plate_rows, synthetic

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "source"


def _model(name: str):
    return load(EXAMPLES / f"{name}.qvr").morphism


def test_host_kinds_follow_their_uses():
    assert host_kinds(_model("grouped_beta_regression").decl) == {"group": HostKind(ids=4)}
    assert host_kinds(_model("eight_schools").decl) == {"sigma": HostKind(positive=True)}
    assert host_kinds(_model("ar1").decl) == {"y_prev": HostKind()}
    # log(exposure): the argument of log (or sqrt) is positive
    assert host_kinds(_model("poisson_regression").decl) == {"exposure": HostKind(positive=True)}


def test_positivity_stops_at_functions_whose_value_is_positive():
    text = """\
object X : Real 1
program p(x) : X -> X
    let s = exp(a) + b
    observe y : X <- Normal(x, s)
    return y
export p
"""
    kinds = host_kinds(loads(text).morphism.decl)
    assert kinds == {"a": HostKind(), "b": HostKind(positive=True)}


def test_a_square_needs_no_positive_host_data():
    # bayesian_linear_regression: sd = sqrt(sigma * sigma + se * se); any se will do
    assert host_kinds(_model("bayesian_linear_regression").decl) == {"se": HostKind()}


def test_the_rows_of_a_relation_take_ids_of_its_domain():
    kinds = host_kinds(load(ROOT / "tests/data/gallery/ppca.qvr").morphism.decl)
    assert kinds == {}  # the ids are the program input there; as host data:
    text = (ROOT / "tests/data/gallery/ppca.qvr").read_text().replace("loadings[i]", "W[k]")
    assert host_kinds(loads(text).morphism.decl) == {"k": HostKind(ids=2)}


def test_plate_programs_have_one_row_per_element():
    assert plate_rows(_model("eight_schools").decl) == 8
    assert plate_rows(_model("ar1").decl) == 60
    assert plate_rows(_model("grouped_beta_regression").decl) is None  # rows of a covariate


@pytest.mark.parametrize("name", ["ar1", "eight_schools", "grouped_beta_regression"])
def test_a_synthetic_corpus_of_a_plate_program_traces_and_scores(name: str):
    torch.manual_seed(0)
    model = _model(name)
    data = synthetic(model, batch=4, seed=0)
    rows = plate_rows(model.decl) or 4
    assert tuple(data.x.shape)[0] == rows
    if name == "grouped_beta_regression":
        group = data.observations["group"]
        assert group.dtype == torch.int64 and group.shape == (4,)
        assert int(group.min()) >= 0 and int(group.max()) < 4
    if name == "eight_schools":
        assert bool((data.observations["sigma"] > 0).all())
    with torch.no_grad():
        sites = model.trace(data.x, dict(data.observations))
        values = {**data.observations, **{n: s.trace for n, s in sites.items()}}
        assert torch.isfinite(model.log_joint(data.x, values))
