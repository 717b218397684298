"""Program semantics: globals, inline families, let/score arithmetic, host data, params."""

import math

import pytest
import torch
from irkit import fin, module, morph, prod, real, ref
from irkit import sample as step
from torch import distributions as D

from quivers.runtime.errors import QvrDataError
from quivers.runtime.ir import (
    BinOp,
    Call,
    FamilySource,
    LetStep,
    Neg,
    Num,
    ProgramDecl,
    ReturnStep,
    SampleStep,
    ScoreStep,
    Var,
)

R1 = real(1)


def _linreg():
    """slope ~ N(0, 3) and noise ~ HalfNormal(1) globally; y_i ~ N(slope * x_i, noise)."""
    prog = ProgramDecl(
        "linreg",
        R1,
        R1,
        ("x",),
        (
            SampleStep("slope", FamilySource("Normal", (Num(0.0), Num(3.0))), R1, False, True),
            SampleStep("noise", FamilySource("HalfNormal", (Num(1.0),)), R1, False, True),
            LetStep("mu", BinOp("*", Var("slope"), Var("x")), R1),
            SampleStep("y", FamilySource("Normal", (Var("mu"), Var("noise"))), R1, True, False),
            ScoreStep("pen", Neg(Call("sum", (BinOp("*", Var("mu"), Var("w", host=True)),)))),
            ReturnStep(("y",)),
        ),
        host_names=("w",),
    )
    return module(programs=[prog]).programs["linreg"]


def test_globals_are_drawn_once_and_counted_once():
    m = _linreg()
    x = torch.randn(7, 1)
    w = torch.full((7, 1), 0.5)
    sites = m.trace(x, {"w": w})
    assert sites["slope"].trace.shape == () and sites["slope"].is_global
    assert sites["slope"].log_prob.shape == ()
    assert sites["y"].trace.shape == (7, 1) and sites["y"].log_prob.shape == (7,)
    assert list(sites) == ["slope", "noise", "y"]
    assert m.latent_names == ("slope", "noise") and m.observed_names == {"y"}
    slope, noise, y = (sites[k].trace for k in ("slope", "noise", "y"))
    want = (
        D.Normal(0.0, 3.0).log_prob(slope)
        + D.HalfNormal(1.0).log_prob(noise)
        + D.Normal(slope * x, noise).log_prob(y).sum()
        - (slope * x * w).sum()
    )
    got = m.log_joint(x, {"slope": slope, "noise": noise, "y": y, "w": w})
    assert got.shape == () and torch.allclose(got, want, rtol=1e-5)


def test_missing_host_data_is_named():
    m = _linreg()
    x = torch.randn(3, 1)
    with pytest.raises(QvrDataError, match="missing host data 'w'"):
        m.trace(x)


def test_observations_condition_and_return():
    m = _linreg()
    x = torch.randn(3, 1)
    y = torch.randn(3, 1)
    assert torch.equal(m.rsample(x, {"y": y, "w": torch.zeros(3, 1)}), y)
    sites = m.trace(x, {"slope": torch.tensor(2.0), "w": torch.zeros(3, 1)})
    assert float(sites["slope"].trace) == 2.0


def test_params_split_the_domain_and_args_concatenate():
    a, b = real(2, "A"), fin(4, "B")
    k = morph("k", prod(a, b), real(3), "kernel", "Normal")
    prog = ProgramDecl(
        "p",
        prod(a, b),
        real(3),
        ("u", "v"),
        (
            step("z", ref(k), real(3), args=("u", "v")),
            LetStep("s", Call("mean", (Call("exp", (Var("z"),)),)), R1),
            ReturnStep(("z", "s")),
        ),
    )
    built = module(k, programs=[prog])
    p, kk = built.programs["p"], built.morphisms["k"]
    x = torch.cat([torch.randn(5, 2), torch.randint(0, 4, (5, 1)).float()], -1)
    sites = p.trace(x)
    z = sites["z"].trace
    assert torch.allclose(sites["z"].log_prob, kk.log_prob(x, z))
    out = p.rsample(x, {"z": z})
    assert out.shape == (5, 4)
    assert torch.allclose(out[:, 3], z.exp().mean(-1))


def test_named_parameters_under_step_prefixes_shared_once():
    k = morph("k", real(2), real(2), "kernel", "Normal")
    prog = ProgramDecl(
        "p",
        real(2),
        real(2),
        (),
        (step("a", ref(k), real(2)), step("b", ref(k), real(2), args=("a",)), ReturnStep(("b",))),
    )
    p = module(k, programs=[prog]).programs["p"]
    names = [n for n, _ in p.named_parameters()]
    assert len(names) == 4 and all(n.startswith("_step_a.") for n in names)
    x = torch.randn(3, 2)
    tr = p.trace(x)
    want = p._step_a.log_prob(x, tr["a"].trace) + p._step_b.log_prob(tr["a"].trace, tr["b"].trace)
    total = p.log_joint(x, {"a": tr["a"].trace, "b": tr["b"].trace})
    assert torch.allclose(total, want.sum())


def test_relation_step_samples_its_row():
    r = morph("r", fin(3), fin(3), "kernel")
    prog = ProgramDecl("p", fin(3), fin(3), (), (step("s", ref(r), fin(3)), ReturnStep(("s",))))
    built = module(r, programs=[prog], algebra="max_plus")
    p = built.programs["p"]
    x = torch.tensor([0, 1, 2])
    s = p.rsample(x)
    assert s.dtype == torch.int64 and s.shape == (3,)
    lj = p.log_joint(x, {"s": s})
    rel = built.morphisms["r"].relation()  # log p in max_plus
    assert math.isclose(float(lj.detach()), float(rel[x, s].sum().detach()), rel_tol=1e-5)


def test_program_float64_with_globals():
    m = _linreg().to(torch.float64)
    x = torch.randn(3, 1, dtype=torch.float64)
    sites = m.trace(x, {"w": torch.zeros(3, 1, dtype=torch.float64)})
    assert sites["slope"].trace.dtype == torch.float64
    assert sites["y"].trace.dtype == torch.float64


def test_inline_site_given_the_wrong_shape():
    m = _linreg()
    x = torch.randn(3, 1)
    with pytest.raises(QvrDataError, match=r"site 'y': expected floats of shape \(3, 1\)"):
        m.log_joint(
            x,
            {
                "slope": torch.tensor(1.0),
                "noise": torch.tensor(1.0),
                "y": torch.zeros(2, 1),
                "w": x,
            },
        )
    with pytest.raises(QvrDataError, match=r"site 'slope': expected floats of shape \(\)"):
        m.log_joint(x, {"slope": torch.zeros(3), "noise": torch.tensor(1.0), "y": x, "w": x})


def test_prior_step_module_without_input():
    m = _linreg()
    slope = m._step_slope.rsample()
    assert slope.shape == ()
    assert torch.allclose(m._step_slope.log_prob(slope), D.Normal(0.0, 3.0).log_prob(slope))
    mu = torch.randn(4, 1)
    y = m._step_y.rsample((mu, torch.tensor(0.5)))
    assert y.shape == (4, 1)
    assert torch.allclose(
        m._step_y.log_prob((mu, torch.tensor(0.5)), y), D.Normal(mu, 0.5).log_prob(y)[:, 0]
    )
