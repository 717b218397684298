"""Every model inference is given satisfies the Model protocol of
``quivers/runtime/trace.py``: compiled programs (every example), the lifted model and
the hand-written test models; an object missing a member does not."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from inference_models import (
    BetaBernoulli,
    GammaPoisson,
    LinearRegression,
    NormalNormal,
    TrajectoryModel,
    correlated_2d,
)

from quivers.dsl import loads
from quivers.inference import Model, bayesian_lift_parameters

EXAMPLES = sorted(
    p
    for p in (Path(__file__).parents[2] / "docs" / "examples" / "source").glob("*.qvr")
    if "\ndeduction " not in p.read_text()  # grammars: tests/runtime/test_deduction_*.py
)
MEMBERS = ("trace", "log_joint", "rsample")


def assert_conforms(model: object) -> None:
    assert isinstance(model, Model), f"{type(model).__name__} does not satisfy Model"
    assert all(isinstance(n, str) for n in model.observed_names)
    assert all(isinstance(n, str) for n in model.latent_names)
    assert not set(model.observed_names) & set(model.latent_names)
    for member in MEMBERS:  # (x, observations/values) positionally, run arguments by keyword
        params = inspect.signature(getattr(model, member)).parameters.values()
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert len(positional) >= 2, f"{type(model).__name__}.{member}: {positional}"
        assert any(p.kind is p.VAR_KEYWORD for p in params), f"{member} takes no run kwargs"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_compiled_programs_satisfy_the_protocol(path: Path) -> None:
    prog = loads(path.read_text(), str(path))
    if not prog.module.programs:  # an exported morphism expression is a model too
        assert prog.module.lets, f"{path.name} has no program and no let"
        assert_conforms(prog.morphism)
        return
    for program in prog.module.programs.values():
        assert_conforms(program)


@pytest.mark.parametrize(
    "make",
    [NormalNormal, BetaBernoulli, GammaPoisson, LinearRegression, TrajectoryModel, correlated_2d],
)
def test_hand_written_models_satisfy_the_protocol(make) -> None:
    assert_conforms(make())


def test_the_lifted_model_satisfies_the_protocol() -> None:
    model = TrajectoryModel()
    x = torch.randint(0, 5, (2, 3))
    with torch.no_grad():
        y = model.rsample(x)
    lifted, _, _ = bayesian_lift_parameters(model, x, {"y": y}, additional_latents={"h": None})
    assert_conforms(lifted)


def test_a_module_without_the_members_does_not_satisfy_it() -> None:
    class NoLogJoint(torch.nn.Module):
        observed_names = frozenset({"y"})
        latent_names = ("mu",)

        def trace(self, x, observations=None, **run):
            return {}

        def rsample(self, x, observations=None, **run):
            return x

    assert not isinstance(NoLogJoint(), Model)
    assert not isinstance(torch.nn.Linear(2, 2), Model)
