"""The Python API the published gallery's snippets use: ``trace(...).sites``, the
Program as an ``nn.Module`` (parameters, ``.to``, calling it with run-time counts,
``run``), ``.tensor`` of a finite relation, the two likelihood lifts, and the
ImportError for the names we do not provide."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch
from inference_models import NormalNormal
from torch import distributions as D
from torch import nn

import quivers.inference as qi
from quivers.dsl import load, loads
from quivers.inference import (
    ELBO,
    NOT_PROVIDED,
    SVI,
    AutoNormalGuide,
    Trace,
    lift_from_log_prob,
    lift_to_bayesian_program,
    trace,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "source"
CHAIN = """
composition markov as algebra
object S : FinSet 3
object O : FinSet 4
morphism transition : S -> S [role=kernel]
morphism emission : S -> O [role=kernel]
let forecast = repeat(transition) >> emission
export forecast
"""


def regression():
    prog = load(EXAMPLES / "bayesian_linear_regression.qvr")
    x = torch.linspace(-1.0, 1.0, 5).unsqueeze(-1)
    obs = {"y": 2.0 * x + 1.0, "se": torch.full_like(x, 0.1)}
    return prog, x, obs


def test_trace_sites_read_like_the_dict_and_hold_the_exact_densities():
    prog, x, obs = regression()
    given = {**obs, "slope": torch.tensor(2.0), "intercept": torch.tensor(0.5)}
    given["sigma"] = torch.tensor(0.3)
    tr = trace(prog.morphism, x, given)
    assert isinstance(tr, Trace) and tr.sites is tr
    assert list(tr.sites) == ["slope", "intercept", "sigma", "y"]
    assert tr.sites["y"] is tr["y"]
    sd = math.sqrt(0.3**2 + 0.1**2)
    want = D.Normal(2.0 * x + 0.5, sd).log_prob(obs["y"]).sum(-1)
    torch.testing.assert_close(tr.sites["y"].log_prob, want)
    torch.testing.assert_close(tr.sites["y"].value, obs["y"])
    torch.testing.assert_close(
        tr.sites["slope"].log_prob, D.Normal(0.0, 3.0).log_prob(given["slope"]).sum()
    )
    # the method and the function give the same kind of object; so does the Program
    assert isinstance(prog.morphism.trace(x, given), Trace)
    assert isinstance(prog.trace(x, given), Trace)
    assert list(trace(prog, x, given).sites) == list(tr.sites)


def test_trace_wraps_a_model_whose_trace_is_a_plain_dict():
    model = NormalNormal()
    x = torch.zeros(3, 1)
    tr = trace(model, x, {"y": torch.zeros(3, 1)})
    assert isinstance(tr, Trace)
    assert set(tr.sites) == set(model.trace(x, {"y": torch.zeros(3, 1)}))
    with pytest.raises(TypeError, match="needs a model"):
        trace(object(), x)


def test_the_function_is_importable_from_the_module_path_too():
    from quivers.inference.trace import trace as by_module_path

    assert by_module_path is qi.trace
    assert importlib.import_module("quivers.inference.trace").Trace is Trace


def test_program_is_an_nn_module_over_every_declaration():
    prog = loads(CHAIN)
    assert isinstance(prog, nn.Module)
    built = {id(p) for p in prog.module.root.parameters()}
    assert built and {id(p) for p in prog.parameters()} == built
    names = dict(prog.named_parameters())
    assert len(names) == len(built)
    assert any("transition" in n for n in names) and any("emission" in n for n in names)
    prog.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in prog.parameters())
    assert prog(n_steps=2).dtype == torch.float64


def _softmax_rows(prog, name):
    return torch.softmax(prog.module.morphisms[name].logits.detach(), dim=-1)


def test_calling_a_program_with_a_run_time_count_gives_the_n_step_matrix():
    prog = loads(CHAIN)
    t, e = _softmax_rows(prog, "transition"), _softmax_rows(prog, "emission")
    for n in (0, 1, 4):
        want = torch.linalg.matrix_power(t, n) @ e
        torch.testing.assert_close(prog(n_steps=n).detach(), want)
    with pytest.raises(Exception, match="n_steps"):
        prog()


def test_tensor_is_the_matrix_of_a_finite_relation():
    prog = loads(CHAIN)
    transition = prog.module.morphisms["transition"]
    torch.testing.assert_close(transition.tensor.detach(), _softmax_rows(prog, "transition"))
    rows = transition.tensor.detach().sum(-1)
    torch.testing.assert_close(rows, torch.ones(3))


def test_run_gives_value_trace_and_exact_log_joint_of_a_named_program():
    prog, x, obs = regression()
    out = prog.run("bayesian_linear_regression", x, obs, seed=3)
    assert out.trace is not None and list(out.trace.sites) == ["slope", "intercept", "sigma", "y"]
    torch.testing.assert_close(out.value, obs["y"])
    values = {**obs, **{n: out.trace[n].trace for n in ("slope", "intercept", "sigma")}}
    torch.testing.assert_close(out.log_joint, prog.morphism.log_joint(x, values))
    again = prog.run("bayesian_linear_regression", x, obs, seed=3)
    torch.testing.assert_close(again.trace["slope"].value, out.trace["slope"].value)
    chain = loads(CHAIN)
    m = chain.run("forecast", n_steps=1)
    torch.testing.assert_close(m.value, chain(n_steps=1))
    assert m.trace is None and m.log_joint is None
    with pytest.raises(KeyError, match="declares no program, morphism or let 'nope'"):
        chain.run("nope")


class Line(nn.Module):
    """A parameter-only module: a line's slope and intercept."""

    def __init__(self) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.tensor(0.5))
        self.intercept = nn.Parameter(torch.tensor(-0.2))

    def forward(self, x):
        return self.slope * x + self.intercept


def _normal_prior(theta, scale):
    return sum(D.Normal(0.0, scale).log_prob(t).sum() for t in theta)


def test_lift_from_log_prob_is_prior_plus_the_given_likelihood():
    line = Line()
    x = torch.linspace(0.0, 1.0, 6).unsqueeze(-1)
    y = 1.5 * x - 0.3

    def log_prob(inp, obs):
        return D.Normal(line(inp), 0.2).log_prob(obs).sum(-1)

    lifted, lx, lobs = lift_from_log_prob(
        line,
        log_prob_fn=log_prob,
        parameter_prior_scale=2.0,
        target_key="y",
        x=x,
        observations={"y": y},
    )
    # the lifted sites are named as the module names its parameters
    assert set(lifted.latent_names) == {n for n, _ in line.named_parameters()}
    assert set(lifted.latent_names) == {"slope", "intercept"}
    assert set(lifted.observed_names) == {"y"}
    theta = {"slope": torch.tensor(1.2), "intercept": torch.tensor(0.1)}
    got = lifted.log_joint(lx, {**lobs, **theta})
    want = _normal_prior(theta.values(), 2.0) + D.Normal(1.2 * x + 0.1, 0.2).log_prob(y).sum()
    torch.testing.assert_close(got, want)
    assert line.slope.item() == 0.5  # the module's own parameters are put back
    with pytest.raises(KeyError, match="cannot draw"):
        lifted.rsample(lx, theta)


def test_lift_to_bayesian_program_observes_through_the_family():
    line = Line()
    x = torch.linspace(0.0, 1.0, 6).unsqueeze(-1)
    y = 1.5 * x - 0.3
    lifted, lx, lobs = lift_to_bayesian_program(
        line,
        location_fn=line,
        observation_family=D.Normal,
        observation_kwargs={"scale": 0.3},
        parameter_prior_scale=1.0,
        target_key="Y",
        x=x,
        observations={"Y": y},
    )
    theta = {"slope": torch.tensor(-0.4), "intercept": torch.tensor(0.7)}
    got = lifted.log_joint(lx, {**lobs, **theta})
    want = _normal_prior(theta.values(), 1.0) + D.Normal(-0.4 * x + 0.7, 0.3).log_prob(y).sum()
    torch.testing.assert_close(got, want)
    site = lifted.trace(lx, {**lobs, **theta})["Y"]
    assert site.observed and site.log_prob.shape == (6,)
    draw = lifted.rsample(lx, theta)  # the family can draw
    assert draw.shape == y.shape


def test_lifting_a_loaded_program_through_a_log_density():
    prog = loads(CHAIN)

    def log_prob(_x, counts):
        pred = prog(n_steps=2)
        return (counts * pred.log()).sum()

    counts = torch.ones(3, 4)
    lifted, lx, lobs = lift_from_log_prob(
        prog,
        log_prob_fn=log_prob,
        target_key="counts",
        x=torch.zeros(1, 1),
        observations={"counts": counts},
    )
    assert len(lifted.latent_names) == len(list(prog.parameters()))
    theta = {n: torch.zeros(lifted.param_shapes[n]) for n in lifted.latent_names}
    # zero logits: uniform rows, so every entry of the 2-step matrix is 1/4
    want = _normal_prior(theta.values(), 1.0) + 12 * math.log(0.25)
    torch.testing.assert_close(lifted.log_joint(lx, {**lobs, **theta}), want)


def test_a_guide_of_a_lifted_model_has_its_parameters_at_construction():
    """The gallery's recipe Adam(list(model.parameters()) + list(guide.parameters()))
    on a lifted model (which has no parameters of its own) needs the guide's now."""
    line = Line()
    x = torch.linspace(0.0, 1.0, 6).unsqueeze(-1)
    lifted, lx, lobs = lift_to_bayesian_program(
        line,
        location_fn=line,
        observation_family=D.Normal,
        observation_kwargs={"scale": 0.3},
        target_key="Y",
        x=x,
        observations={"Y": 1.5 * x - 0.3},
    )
    assert list(lifted.parameters()) == []
    guide = AutoNormalGuide(lifted, observed_names={"Y"})
    assert sum(p.numel() for p in guide.parameters()) == 2 * 2  # loc and scale per weight
    svi = SVI(lifted, guide, torch.optim.Adam(list(guide.parameters()), lr=0.05), ELBO())
    losses = [svi.step(lx, lobs) for _ in range(100)]
    assert sum(losses[-10:]) < sum(losses[:10])
    slope = float(guide.median()["slope"])
    assert abs(slope - 1.5) < 0.5, slope


@pytest.mark.parametrize("name", sorted(NOT_PROVIDED))
def test_names_we_do_not_provide_say_what_to_use_instead(name):
    with pytest.raises(ImportError, match=rf"quivers\.inference\.{name} is not provided.*use "):
        exec(f"from quivers.inference import {name}", {})
    with pytest.raises(AttributeError):
        qi.does_not_exist  # noqa: B018
