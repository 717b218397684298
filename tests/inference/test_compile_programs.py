"""``compile=True`` on QVR programs: the potential is one graph, and its data are
still validated.

A program's ``log_joint`` validates its data on every call (ids in range, the
sites' dtypes and shapes), with host-side branches that ``torch.compile`` cannot
capture. :class:`Potential` validates once and makes its later calls inside
``quivers.runtime.checks.validated_data``, where the runtime skips the checks; the
compiled potential and gradient must then equal the eager ones, and data replaced
or modified after the first validation must be validated again (the same
``QvrDataError`` naming the site and the expected shape), compiled or not.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from quivers.dsl import load
from quivers.inference import CompileFallbackWarning
from quivers.inference.potential import Potential
from quivers.jobs.data import run_arguments, synthetic
from quivers.runtime.errors import QvrDataError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def _have_cxx() -> bool:
    """TorchInductor needs a C++ compiler on CPU ($CXX, g++, clang++)."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c)


needs_cxx = pytest.mark.skipif(
    not _have_cxx(), reason="no C++ compiler: TorchInductor cannot build CPU kernels"
)


def _program(name: str) -> tuple[torch.nn.Module, torch.Tensor, dict, dict]:
    """An example program with its data: eight schools' real data, else the
    synthetic data ``qvr fit`` would draw (fixed seed)."""
    model = load(EXAMPLES / "source" / f"{name}.qvr").morphism
    if name == "eight_schools":
        data = json.loads((EXAMPLES / "data" / "eight_schools.json").read_text())
        x = torch.tensor(data["x"])
        obs = {k: torch.tensor(data[k], dtype=torch.float32) for k in ("y", "sigma")}
        return model, x, obs, {}
    ds = synthetic(model, seed=0)
    return model, ds.x, dict(ds.observations), run_arguments(model, 8)


def _lifted_rnn() -> tuple[torch.nn.Module, torch.Tensor, dict, dict]:
    """The seed's lifted model (``benchmarks/bench_inference.py``, ``reference_model``):
    vanilla_rnn_lm at batch 4 x length 8, every weight lifted, plus h."""
    from quivers.inference import bayesian_lift_parameters

    torch.manual_seed(0)
    model = load(EXAMPLES / "source" / "vanilla_rnn_lm.qvr").morphism
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    x = torch.randint(0, 256, (4, 8))
    with torch.no_grad():
        y = model.rsample(x)
        h_shape = tuple(model._step_h.rsample(x).shape)
    lifted, lx, lobs = bayesian_lift_parameters(
        model, x, {"next_token": y}, additional_latents={"h": h_shape}
    )
    return lifted, lx, lobs, {}


def _potentials(model, x, obs, run) -> tuple[Potential, Potential, torch.Tensor]:  # noqa: ANN001
    with torch.no_grad():
        trace = model.trace(x, obs, **run)
    eager = Potential(model, x, obs, trace, run)
    compiled = Potential(model, x, obs, trace, run, compile=True)
    u = eager.layout.unconstrain({n: trace[n].trace for n in eager.layout.site_names})
    return eager, compiled, u


def _compiled_equals_eager(model, x, obs, run, rtol: float = 1e-5) -> None:  # noqa: ANN001
    eager, compiled, u = _potentials(model, x, obs, run)
    points = [u, u + 0.1 * torch.randn(u.shape, generator=torch.Generator().manual_seed(1))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the first call validates (eager), the later ones run the compiled graph
        compiled.value_and_grad(u)
        for q in points:
            e0, g0 = eager.value_and_grad(q)
            e1, g1 = compiled.value_and_grad(q)
            assert e1 == pytest.approx(e0, rel=rtol)
            assert float((g1 - g0).norm()) <= rtol * float(g0.norm()) + 1e-6
    fell_back = [str(w.message) for w in caught if issubclass(w.category, CompileFallbackWarning)]
    assert fell_back == []
    assert compiled.compiled is not None and compiled.compiled.error is None
    assert compiled.compiled._fn is not None  # the compiled graph is what ran


@needs_cxx
@pytest.mark.parametrize(
    "name",
    # plates and host data; host ids read by z[group]; observed ids and a logit
    ["eight_schools", "hierarchical_regression", "logistic_regression"],
)
def test_compile_true_captures_the_program_and_matches_eager(name):
    _compiled_equals_eager(*_program(name))


@needs_cxx
@pytest.mark.slow
def test_compile_true_captures_the_lifted_rnn_and_matches_eager():
    """About 10 s: the scan of 8 steps and 66,048 coordinates compile to one graph."""
    _compiled_equals_eager(*_lifted_rnn(), rtol=1e-4)


@pytest.mark.parametrize("name", ["mixture_model", "vanilla_rnn_lm", "ar1"])
def test_the_potential_of_validated_data_has_no_graph_break(name):
    """Dynamo alone (no compiler needed): a marginalised latent, a scan over kernels,
    ar_filter's loop trace as one graph once the data are validated."""
    eager, _, u = _potentials(*_program(name))
    eager.value_and_grad(u)
    assert eager.checked
    with eager.trusted():
        explained = torch._dynamo.explain(eager)(u)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_data_replaced_after_validation_are_validated_again(compile):
    model, x, obs, run = _program("eight_schools")
    _, potential, u = _potentials(model, x, obs, run)
    potential.compiled = potential.compiled if compile else None
    potential.value_and_grad(u)
    assert potential.checked
    potential.observations["y"] = torch.zeros(5)
    assert not potential.checked
    with pytest.raises(QvrDataError, match=r"site 'y'.*shape \(8, 1\).*\(5,\)"):
        potential.value_and_grad(u)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_data_modified_in_place_after_validation_are_validated_again(compile):
    model, x, obs, run = _program("hierarchical_regression")
    _, potential, u = _potentials(model, x, obs, run)
    potential.compiled = potential.compiled if compile else None
    for _ in range(2):  # validated, then trusted (compiled when compiling)
        potential.value_and_grad(u)
    potential.observations["group"][0] = 8  # County has 8 elements: ids 0..7
    with pytest.raises(
        QvrDataError, match=r"index 'group' has ids \d\.\.8, outside the plate's 0\.\.7"
    ):
        potential.value_and_grad(u)


@needs_cxx
def test_valid_data_swapped_after_compiling_are_used_by_the_compiled_graph():
    """The compiled graph reads the data, it does not bake them in: new y, same
    energy as an eager potential built on the new y."""
    model, x, obs, run = _program("eight_schools")
    _, compiled, u = _potentials(model, x, obs, run)
    compiled.value_and_grad(u)
    compiled.value_and_grad(u)  # compiled now
    new = {**obs, "y": obs["y"] + 3.0}
    compiled.observations["y"] = new["y"]
    reference, _, _ = _potentials(model, x, new, run)
    for _ in range(2):  # revalidated eagerly, then compiled on the new data
        e1, g1 = compiled.value_and_grad(u)
        e0, g0 = reference.value_and_grad(u)
        assert e1 == pytest.approx(e0, rel=1e-5)
        assert torch.allclose(g1, g0, rtol=1e-5, atol=1e-6)
    assert compiled.compiled is not None and compiled.compiled.error is None
