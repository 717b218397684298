"""Every gallery example's ``log_joint`` equals its density written out by hand.

For each ``docs/examples/source/*.qvr``: load it, draw every site with ``trace``, move
each trace a little (so the runtime scores values it did not draw itself: no cached
sample can stand in), and compare the runtime's ``log_joint`` and per-site
densities with ``densities.py``, which recomputes them from the model's parameters
with plain torch arithmetic. Every example in the directory must have an entry there,
so a new example cannot go untested.

Each example runs in float32 (the default) and in float64 (``model.to(torch.float64)``),
both at atol = rtol = 1e-5. float32 round-off is not an issue at these sizes: the worst
float32 error measured is about 1/40 of the tolerance, even with fixed scales of 0.01
(which multiply the round-off of ``value - loc`` by 100) and totals of order 6e4.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from densities import DENSITIES, Params, ppca, vae_encoder
from torch.distributions import constraints, transform_to

from quivers.dsl import load

SOURCE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "source"
# programs (grammars are checked against enumeration in test_deduction_exact.py)
PROGRAMS = sorted(p for p in SOURCE.glob("*.qvr") if "\ndeduction " not in p.read_text())
# relations under the real algebra have no sites (nothing to sample); their matrix is
# checked against the hand-written product instead
RELATIONS = {"ppca": ppca}
EXAMPLES = [p for p in PROGRAMS if p.stem not in RELATIONS]
TOL = {"atol": 1e-5, "rtol": 1e-5}
B, T = 3, 5  # rows; sequence length (>= 3, so h_{t-1} and h_{t-2} differ)

Inputs = tuple[torch.Tensor, dict[str, torch.Tensor]]


def _ids(n: int, *shape: int) -> Inputs:
    return torch.randint(0, n, shape), {}


def _bidirectional() -> Inputs:
    ids = torch.randint(0, 128, (B, T))
    return torch.stack([ids, ids.flip(1)], -1), {}  # as the example's page builds it


def _regression() -> Inputs:
    x = torch.linspace(-2.0, 2.0, 6, dtype=torch.float64).unsqueeze(-1)
    return x, {"se": 0.1 + 0.4 * torch.rand(6, 1, dtype=torch.float64)}


# example -> (program input and host data, the run keywords to try)
INPUTS: dict[str, tuple[Callable[[], Inputs], list[dict[str, Any]]]] = {
    "vanilla_rnn_lm": (lambda: _ids(256, B, T), [{}]),
    "elman_rnn_lm": (lambda: _ids(128, B, T), [{}]),
    "gru_lm": (lambda: _ids(128, B, T), [{}]),
    "lstm_lm": (lambda: _ids(128, B, T), [{}]),
    "bidirectional_rnn": (_bidirectional, [{}]),
    "transformer_lm": (lambda: _ids(128, B, 8), [{}]),
    "state_space": (lambda: (torch.randn(B, T, 2, dtype=torch.float64), {}), [{}]),
    "gaussian_mixture": (lambda: _ids(4, 8), [{}]),
    # 0: the unit; 1; 5 = 101b and 6 = 110b take both branches of repeated squaring
    "hmm": (lambda: _ids(3, 8), [{"n_steps": n} for n in (0, 1, 5, 6)]),
    "bayesian_linear_regression": (_regression, [{}]),
    "vae": (lambda: (torch.randn(B, 64, dtype=torch.float64), {}), [{}]),
    # plate programs: the rows are the plate's elements; host data one per element
    "eight_schools": (
        lambda: (torch.arange(8), {"sigma": 5.0 + 10.0 * torch.rand(8, dtype=torch.float64)}),
        [{}],
    ),
    "grouped_beta_regression": (
        lambda: (
            torch.randn(B, 1, dtype=torch.float64),
            {"group": torch.randint(0, 4, (B,))},
        ),
        [{}],
    ),
    "ar1": (lambda: (torch.arange(60), {"y_prev": torch.randn(60, dtype=torch.float64)}), [{}]),
    "logistic_regression": (lambda: (torch.randn(B, 1, dtype=torch.float64), {}), [{}]),
    "poisson_regression": (
        lambda: (
            torch.randn(B, 1, dtype=torch.float64),
            {"exposure": 0.5 + torch.rand(B, dtype=torch.float64)},
        ),
        [{}],
    ),
    "gamma_regression": (lambda: (torch.randn(B, 1, dtype=torch.float64), {}), [{}]),
    "robust_regression": (lambda: (torch.randn(B, 1, dtype=torch.float64), {}), [{}]),
    "hierarchical_regression": (
        lambda: (torch.randn(B, 1, dtype=torch.float64), {"group": torch.randint(0, 8, (B,))}),
        [{}],
    ),
    "changepoint": (
        lambda: (torch.arange(40), {"t": torch.arange(40, dtype=torch.float64)}),
        [{}],
    ),
    "ar2": (
        lambda: (
            torch.arange(80),
            {
                "lag1": torch.randn(80, dtype=torch.float64),
                "lag2": torch.randn(80, dtype=torch.float64),
            },
        ),
        [{}],
    ),
    "negbin_regression": (lambda: (torch.randn(B, 1, dtype=torch.float64), {}), [{}]),
    # 1; 5 and 6 take both branches of repeated squaring; 0 is the identity, where a
    # jittered successor is impossible: -inf by hand and by the runtime
    "markov_chain": (lambda: _ids(3, 8), [{"n_steps": n} for n in (0, 1, 5, 6)]),
    "mixture_model": (lambda: (torch.zeros(B, 1, dtype=torch.float64), {}), [{}]),
    "zero_inflated_poisson": (lambda: (torch.randn(B, 1, dtype=torch.float64), {}), [{}]),
    "eight_schools_centred": (
        lambda: (torch.arange(8), {"sigma": 5.0 + 10.0 * torch.rand(8, dtype=torch.float64)}),
        [{}],
    ),
    "neals_funnel": (lambda: (torch.arange(9), {}), [{}]),
    # 30 standardised-scale features: eta has prior sd about 5.5, so both tails of the
    # sigmoid are reached
    "breast_cancer_logistic": (lambda: (torch.randn(B, 30, dtype=torch.float64), {}), [{}]),
}


def _jitter(trace: Any, support: Any) -> Any:
    """A nearby trace: continuous leaves moved in unconstrained space, ids redrawn,
    counts moved up by 0, 1 or 2."""
    if isinstance(trace, tuple):
        assert isinstance(support, tuple) and len(support) == len(trace)
        return tuple(_jitter(t, s) for t, s in zip(trace, support, strict=True))
    if isinstance(support, constraints.integer_interval):
        return torch.randint(support.lower_bound, support.upper_bound + 1, trace.shape)
    if support is constraints.boolean:  # a Bernoulli draw into a two-element set
        return torch.randint(0, 2, trace.shape)
    if isinstance(support, constraints._IntegerGreaterThan):  # counts (as floats)
        return trace + torch.randint(0, 3, trace.shape).to(trace.dtype)
    assert trace.is_floating_point() and not support.is_discrete
    to = transform_to(support)
    return to(to.inv(trace.detach()) + 0.05 * torch.randn_like(trace))


def _model(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    model = load(path).morphism.to(dtype)
    with torch.no_grad():  # move every parameter off its initial value
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    return got.shape == want.shape and torch.allclose(got, want, **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_log_joint_matches_hand_written_density(path: Path, dtype: torch.dtype) -> None:
    if path.stem not in DENSITIES or path.stem not in INPUTS:
        pytest.fail(f"{path.name}: no hand-written density (tests/runtime/densities.py) or input")
    density, (make_input, runs) = DENSITIES[path.stem], INPUTS[path.stem]
    torch.manual_seed(1234)
    model = _model(path, dtype)
    x, host = make_input()
    x = x.to(dtype) if x.is_floating_point() else x
    host = {k: v.to(dtype) for k, v in host.items()}
    for run in runs:
        P = Params(model)
        sites = model.trace(x, host, **run)
        assert set(sites) == set(model.latent_names) | model.observed_names

        # the densities trace() reports for its own draws
        drawn = density(P, x, host, {n: s.trace for n, s in sites.items()}, run)
        assert set(drawn) == set(sites), (
            f"hand density covers {sorted(drawn)}, sites {sorted(sites)}"
        )
        for name, site in sites.items():
            assert _close(site.log_prob, drawn[name]), (name, run, site.log_prob, drawn[name])

        # log_joint of traces the runtime did not draw
        values = {n: _jitter(s.trace, s.support) for n, s in sites.items()}
        hand = density(P, x, host, values, run)
        total = sum(lp.sum() for lp in hand.values())
        got = model.log_joint(x, {**values, **host}, **run)
        assert got.dim() == 0
        assert torch.allclose(got, total, **TOL), (run, float(got), float(total))
        rescored = model.trace(x, {**values, **host}, **run)
        slack = TOL["atol"] + TOL["rtol"] * abs(total.item())
        for name, lp in hand.items():
            assert _close(rescored[name].log_prob, lp), (name, run, rescored[name].log_prob, lp)
            # each site weighs more than the tolerance, so dropping it would fail above
            # (an impossible jittered value makes the total -inf, compared exactly)
            if torch.isfinite(total):
                assert abs(lp.sum().item()) > slack, (name, run, lp.sum().item(), slack)

        assert not P.unused(), f"parameters the hand density does not read: {P.unused()}"


def test_every_hand_written_density_has_its_example() -> None:
    assert EXAMPLES, f"no examples found in {SOURCE}"
    stems = {p.stem for p in EXAMPLES}
    assert set(DENSITIES) <= stems and set(INPUTS) <= stems, sorted(
        (set(DENSITIES) | set(INPUTS)) - stems
    )
    assert set(RELATIONS) <= {p.stem for p in PROGRAMS}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(RELATIONS))
def test_relation_example_matrix_matches_hand_written_product(
    name: str, dtype: torch.dtype
) -> None:
    torch.manual_seed(1234)
    model = _model(SOURCE / f"{name}.qvr", dtype)
    P = Params(model)
    want = RELATIONS[name](P)
    assert _close(model.tensor, want) and _close(model.relation(), want)
    assert not P.unused(), f"parameters the hand product does not read: {P.unused()}"


def test_vae_exported_encoder_and_elbo() -> None:
    """The VAE page's ELBO: log_joint(x, {z, x_rec: x}) - encoder.log_prob(x, z)."""
    torch.manual_seed(1234)
    prog = load(SOURCE / "vae.qvr")
    model, encoder = prog.morphism.to(torch.float64), prog.encoder.to(torch.float64)
    x = torch.randn(B, 64, dtype=torch.float64)
    z = encoder.rsample(x)
    # an exported morphism is a model with one site; its kernel is `_step_encoder`
    P = Params(encoder._step_encoder)
    log_q = vae_encoder(P, x, z)
    assert not P.unused()
    assert _close(encoder.log_prob(x, z), log_q)
    log_p = DENSITIES["vae"](Params(model), x, {}, {"z": z, "x_rec": x}, {})
    elbo = model.log_joint(x, {"z": z, "x_rec": x}) - encoder.log_prob(x, z).sum()
    assert torch.allclose(elbo, log_p["z"].sum() + log_p["x_rec"].sum() - log_q.sum(), **TOL)
