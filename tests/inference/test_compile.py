"""``MCMC(..., compile=True)``: the potential and its gradient through ``torch.compile``.

Compiled and eager potentials agree to float tolerance (a compiled graph may sum in
another order), so a compiled chain follows the eager chain of the same seed within
that tolerance; a model that cannot be compiled (or a machine without a C++ compiler,
which TorchInductor needs on CPU) runs eagerly after a ``CompileFallbackWarning``,
giving exactly the eager draws.
"""

from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch
from inference_models import LinearRegression, Step, StepModel, correlated_2d
from torch import distributions as D

from quivers.inference import MCMC, CompileFallbackWarning, NUTSKernel
from quivers.inference.potential import Potential


def _have_cxx() -> bool:
    """Whether TorchInductor finds a C++ compiler (its default search: $CXX, g++,
    clang++)."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c)


def _regression() -> tuple[LinearRegression, torch.Tensor, dict[str, torch.Tensor]]:
    x = torch.linspace(-1, 1, 15)
    return LinearRegression(), x, {"y": 2 * x - 0.5}


def test_the_compiled_potential_is_the_eager_one():
    model = correlated_2d()
    eager = Potential(model, None, {}, model.trace(None, {}))
    compiled = Potential(model, None, {}, model.trace(None, {}), compile=True)
    points = torch.randn(5, 2, generator=torch.Generator().manual_seed(0)) * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for u in points:
            e0, g0 = eager.value_and_grad(u)
            e1, g1 = compiled.value_and_grad(u)
            assert e1 == pytest.approx(e0, rel=1e-6)
            assert torch.allclose(g1, g0, rtol=1e-5, atol=1e-6)
    fell_back = [w for w in caught if issubclass(w.category, CompileFallbackWarning)]
    assert compiled.compiled is not None
    if _have_cxx():
        # the compiled graph ran: no fallback (CI installs g++: scripts/ci-deps.sh)
        assert compiled.compiled.error is None and not fell_back
    else:
        # without a C++ compiler TorchInductor cannot build the kernels: what ran, and
        # matched, is the eager fallback, and the user was told
        assert compiled.compiled.error is not None and len(fell_back) == 1


@pytest.mark.parametrize(
    ("chains", "tree"),
    [(1, "iterative"), (1, "recursive"), (3, None)],
    ids=["one-chain-iterative", "one-chain-recursive", "three-vectorised"],
)
def test_compile_true_follows_the_eager_chain_of_the_same_seed(chains, tree):
    """Short warmup (step size only): the chains make the same discrete choices, so
    float rounding stays rounding. Over long warmups a difference in the last bit
    eventually flips one choice (a U-turn check, a comparison of log weights, the
    step-size heuristic's threshold) and the chains part, as two eager runs on
    different BLAS builds would. One chain names its tree: by default an eager chain
    is recursive and a compiled one iterative, which read the stream differently."""
    model, x, obs = _regression()
    # the compiled tree in chunks of two leaves, not the default eight: the same code
    # path at a fraction of the compile time (test_nuts_iterative's slow run checks
    # chunks of eight against the eager tree)
    chunk = {"leaves_per_call": 2}
    runs = [
        MCMC(
            NUTSKernel(tree=tree, **chunk),
            num_warmup=10,
            num_samples=40,
            num_chains=chains,
            seed=3,
            compile=c,
        ).run(model, x, obs)
        for c in (False, True)
    ]
    eager, compiled = runs
    # same trajectories (tree sizes) and the same draws up to float rounding
    assert torch.equal(eager.num_steps, compiled.num_steps)
    assert torch.allclose(eager.unconstrained, compiled.unconstrained, rtol=1e-4, atol=1e-4)
    assert torch.allclose(eager.step_sizes, compiled.step_sizes, rtol=1e-4)
    assert int(eager.num_steps.sum()) > 40 * chains  # real trajectories


class _Branching(StepModel):
    """mu ~ Normal(0, 1), with a Python branch on mu's value in the log density: dynamo
    cannot capture it in one graph, so compile=True must fall back."""

    def steps(self) -> list[Step]:
        return [
            Step("mu", lambda x, e: D.Normal(torch.tensor(0.0), torch.tensor(1.0)), is_global=True)
        ]

    def log_joint(self, x, values, **run):
        lp = super().log_joint(x, values, **run)
        if float(values["mu"].detach().sum()) > 1e6:  # never true; a graph break
            return lp - 1.0
        return lp


def test_a_model_that_cannot_compile_runs_eagerly_after_a_warning():
    model = _Branching()

    def run(compile: bool):
        return MCMC(NUTSKernel(), num_warmup=20, num_samples=20, seed=1, compile=compile).run(
            model, None, {}
        )

    with pytest.warns(CompileFallbackWarning, match="running it eagerly"):
        compiled = run(True)
    eager = run(False)
    assert torch.equal(compiled.unconstrained, eager.unconstrained)
    assert torch.equal(compiled.energy, eager.energy)


def test_a_failing_compiler_falls_back(monkeypatch):
    """As on a machine without a C++ compiler: torch.compile's call raises."""

    def broken(*args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("InductorError: CppCompileError: C++ compiler not found")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    model, x, obs = _regression()
    with pytest.warns(CompileFallbackWarning, match="C\\+\\+ compiler not found"):
        compiled = MCMC(NUTSKernel(), num_warmup=10, num_samples=10, seed=2, compile=True).run(
            model, x, obs
        )
    eager = MCMC(NUTSKernel(), num_warmup=10, num_samples=10, seed=2).run(model, x, obs)
    assert torch.equal(compiled.unconstrained, eager.unconstrained)
