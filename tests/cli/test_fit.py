"""qvr fit: summaries, plots, the fitted state and its round trip through qvr sample."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from quivers.inference import inductor

from .helpers import (
    EXAMPLES,
    REFERENCE,
    REGRESSION,
    installed,
    one_clear_error,
    qvr,
    regression_data,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fit(tmp_path: Path, *args: str | Path, program: Path = REFERENCE):
    return qvr(
        "fit", program, "--plot", tmp_path / "fit.png", "--progress", "plain", *args
    )  # fmt: skip


def test_svi_fit_prints_progress_summary_plot_and_state(tmp_path: Path) -> None:
    result = fit(tmp_path, "--steps", "40", "--lr", "0.005")
    assert result.code == 0, result.err
    progress = [ln for ln in result.err_lines if ln.startswith("fit svi ")]
    assert progress[0].startswith("fit svi   2% step 1/40 · loss ")
    assert progress[-1].startswith("fit svi 100% step 40/40 · loss ")
    assert all("elapsed" in ln for ln in progress) and "ETA" in progress[1]
    assert len(progress) <= 22  # plain lines: one per 5%, not one per step
    out = result.out.splitlines()
    assert out[0].startswith("vanilla_rnn_lm: SVI, 40/40 steps (Adam, lr 0.005) in ")
    assert out[1].startswith("data: synthetic, weights drawn under seed 0 (x (4, 8) int64")
    loss = next(ln for ln in out if ln.startswith("loss (negative ELBO): "))
    first, last = (float(v) for v in loss.split(": ")[1].split(" (")[0].split(" -> "))
    assert last < first  # the loss drops
    assert any(ln.split()[0] == "h" and "(4, 8, 128)" in ln for ln in out)  # the guide's site h
    assert (tmp_path / "fit.png").read_bytes().startswith(PNG_MAGIC)
    state = tmp_path / "vanilla_rnn_lm.state.pt"  # default: next to the plot
    assert f"state: {state}" in result.out
    saved = torch.load(state, weights_only=True)
    assert saved["format"] == "qvr-state" and saved["method"] == "svi"
    assert saved["target"] == "vanilla_rnn_lm" and saved["steps_done"] == 40
    assert not saved["cancelled"]


TWO_EXPORTS = """\
object X : Real 1
object Y : Real 1
program first(x) : X -> Y
    sample w <- Normal(0.0, 1.0)
    observe y : Y <- Normal(w, 1.0)
    return y
program second(x) : X -> Y
    sample w <- Normal(0.0, 2.0)
    observe y : Y <- Normal(w, 1.0)
    return y
export first
export second
"""


def test_fits_of_two_exports_write_their_own_default_outputs(tmp_path: Path) -> None:
    program = tmp_path / "two.qvr"
    program.write_text(TWO_EXPORTS)
    for target in ("first", "second"):
        run = qvr("fit", program, "--target", target, "--steps", "2", "--progress", "none")
        assert run.code == 0, run.err
        state = tmp_path / f"two.{target}.state.pt"
        assert f"state: {state}" in run.out
        assert torch.load(state, weights_only=True)["target"] == target
        assert (tmp_path / f"two.{target}.loss.png").read_bytes().startswith(PNG_MAGIC)
    plain = qvr("fit", program, "--steps", "2", "--progress", "none", "--plot", tmp_path / "p.svg")
    assert plain.code == 0, plain.err
    assert torch.load(tmp_path / "two.state.pt", weights_only=True)["target"] == "first"
    # the state names its program: sampling from it needs no --target
    again = qvr("sample", program, "--from", tmp_path / "two.second.state.pt", "--n", "2")
    assert again.code == 0 and again.out.startswith("second: "), again.err


def test_fit_json_summary(tmp_path: Path) -> None:
    result = fit(tmp_path, "--steps", "3", "--format", "json", "--state", tmp_path / "s.pt")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["ok"] and data["kind"] == "svi" and len(data["losses"]) == 3
    assert "compiled" not in data  # NUTS's key: SVI has no compiled path
    assert data["state_file"] == str(tmp_path / "s.pt") and data["plot"] == str(
        tmp_path / "fit.png"
    )
    assert (tmp_path / "s.pt").is_file()


def test_fitted_state_round_trips_through_sample(tmp_path: Path) -> None:
    state = tmp_path / "rnn.state.pt"
    assert fit(tmp_path, "--steps", "5", "--state", state).code == 0
    out = tmp_path / "draws.pt"
    result = qvr("sample", REFERENCE, "--from", state, "--seed", "7", "--n", "3", "--out", out)
    assert result.code == 0, result.err
    assert f"with the fitted weights of {state} (svi, 5 steps)" in result.out
    drawn = torch.load(out, weights_only=True)
    # the same draw by hand: the fitted weights, the same seed, the same prompts
    from quivers.dsl import load
    from quivers.jobs.data import random_input

    model = load(REFERENCE).morphism
    weights = torch.load(state, weights_only=True)["state_dict"]
    model.load_state_dict(weights)
    torch.manual_seed(7)
    x = random_input(model.decl.dom, 3, 8, True)
    with torch.no_grad():
        trace = model.trace(x)
    assert torch.equal(drawn["x"], x)
    assert torch.equal(drawn["h"], trace["h"].value)
    assert torch.equal(drawn["next_token"], trace["next_token"].value)
    # and not the weights a plain `qvr sample` draws
    plain = tmp_path / "plain.pt"
    assert qvr("sample", REFERENCE, "--seed", "7", "--n", "3", "--out", plain).code == 0
    assert not torch.equal(torch.load(plain, weights_only=True)["h"], drawn["h"])


def test_state_that_does_not_fit_the_program(tmp_path: Path) -> None:
    state = tmp_path / "rnn.state.pt"
    assert fit(tmp_path, "--steps", "1", "--state", state).code == 0
    smaller = tmp_path / "small.qvr"
    smaller.write_text(REFERENCE.read_text().replace("Real 128", "Real 32"))
    one_clear_error(qvr("sample", smaller, "--from", state), "does not fit this program", "shape")
    regression = tmp_path / "regression.qvr"
    regression.write_text(REGRESSION)
    one_clear_error(qvr("sample", regression, "--from", state), "fitted for 'vanilla_rnn_lm'")
    junk = tmp_path / "junk.pt"
    torch.save({"a": torch.zeros(1)}, junk)
    one_clear_error(qvr("sample", REFERENCE, "--from", junk), "not a state file")


def test_fit_refuses_bad_options_before_running(tmp_path: Path) -> None:
    one_clear_error(fit(tmp_path, "--steps", "0"), "--steps must be at least 1")
    one_clear_error(
        qvr("fit", REFERENCE, "--plot", tmp_path / "p.txt"), "unsupported plot type"
    )  # fmt: skip
    bad = tmp_path / "bad.qvr"
    bad.write_text(REFERENCE.read_text().replace("scan(cell)", "scan(cel)"))
    one_clear_error(fit(tmp_path, program=bad), f"{bad}:7:34: error[E0101]")


def test_nuts_fit_summary_and_trace_plot(tmp_path: Path) -> None:
    program = tmp_path / "regression.qvr"
    program.write_text(REGRESSION)
    data = tmp_path / "line.pt"
    regression_data(data, slope=1.5, intercept=-0.7, n=20)
    result = fit(
        tmp_path, "--method", "nuts", "--data", data, "--warmup", "30", "--samples", "30",
        program=program,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert any(ln.startswith("fit nuts ") and "warmup 1/30" in ln for ln in result.err_lines)
    out = result.out
    assert "NUTS, 2 chain(s) x (30 warmup + 30 draws)" in out
    assert "acceptance per chain: " in out and "divergences: " in out
    header = next(ln for ln in out.splitlines() if ln.split()[:1] == ["block"])
    assert header.split() == ["block", "shape", "mean", "sd", "r_hat", "ess"]
    assert (tmp_path / "fit.png").read_bytes().startswith(PNG_MAGIC)
    assert torch.load(tmp_path / "regression.state.pt", weights_only=True)["method"] == "nuts"


def test_nuts_reports_the_divergences_of_warmup_apart(tmp_path: Path) -> None:
    """Neal's funnel (centred) diverges while the step size adapts; a short run's kept
    draws show none, and "divergences: 0" alone would hide that its draws are biased."""
    funnel = EXAMPLES / "neals_funnel.qvr"
    args = ("--method", "nuts", "--warmup", "10", "--samples", "5", "--chains", "1")
    wire = fit(tmp_path, *args, "--format", "json", "--plot", tmp_path / "f.svg", program=funnel)
    assert wire.code == 0, wire.err
    diagnostics = json.loads(wire.out)["diagnostics"]
    assert diagnostics["divergences"] == [0] and diagnostics["warmup_divergences"][0] >= 1
    assert json.loads(wire.out)["compiled"] is False  # --compile not given: eager


@pytest.mark.parametrize(
    ("kept", "warmup", "said"),
    [
        (0, 3, "warning: 3 during warmup diverged"),
        (2, 0, "warning: 2 among the kept draws diverged"),
        (2, 5, "warning: 2 among the kept draws and 5 during warmup diverged"),
        (0, 0, None),
    ],
)
def test_the_nuts_summary_gives_both_counts_and_warns(kept, warmup, said) -> None:
    from quivers.commands.fit import _nuts_lines
    from quivers.jobs.protocol import RunResult

    diagnostics = {"acceptance": [0.8], "divergences": [kept], "warmup_divergences": [warmup]}
    lines = _nuts_lines(
        RunResult("nuts", "funnel", diagnostics={**diagnostics, "step_size": [0.3]})
    )
    assert lines[0] == (
        f"acceptance per chain: 0.8; divergences: {kept} (warmup: {warmup}); step size: 0.3"
    )
    warnings = [ln for ln in lines if ln.startswith("warning: ")]
    if said is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(said), warnings
        assert "biased" in warnings[0] and "non-centred" in warnings[0]


def test_fit_nuts_on_discrete_latents_is_a_clear_error(tmp_path: Path) -> None:
    mixture = REFERENCE.parent / "gaussian_mixture.qvr"
    one_clear_error(fit(tmp_path, "--method", "nuts", program=mixture), "discrete")


@pytest.mark.parametrize("method", ["svi", "nuts"])
def test_recovers_slope_and_intercept(tmp_path: Path, method: str) -> None:
    """Known line y = 1.5 x - 0.7 with noise 0.3 at 60 points: the posterior sd of
    each coefficient is about 0.04, so a fit within 0.15 (about 4 sd) has recovered it;
    the summary's mean and sd then match the exact conjugate posterior within their
    Monte Carlo error."""
    program = tmp_path / "regression.qvr"
    program.write_text(REGRESSION)
    data = tmp_path / "line.pt"
    regression_data(data, slope=1.5, intercept=-0.7, n=60, seed=0)
    extra = ["--steps", "400", "--lr", "0.05"] if method == "svi" else ["--warmup", "150"]
    result = fit(
        tmp_path, "--method", method, "--data", data, "--seed", "1", "--format", "json", *extra,
        program=program,
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)["posterior"]}
    assert abs(rows["slope"]["mean"] - 1.5) < 0.15, rows["slope"]
    assert abs(rows["intercept"]["mean"] - (-0.7)) < 0.15, rows["intercept"]
    exact = _regression_posterior(data)
    for name in ("slope", "intercept"):
        assert 0.01 < rows[name]["sd"] < 0.15, rows[name]  # a posterior, not a point
        if method == "nuts":
            assert rows[name]["r_hat"] < 1.1 and rows[name]["ess"] > 20, rows[name]
        mean, sd = exact[name]
        if method == "svi":
            # the summary's mean and sd come from 200 guide draws: their standard
            # errors are sd/sqrt(200) and 1/sqrt(400) = 5 % relative; mean-field is
            # exact here (x is symmetric), and 400 steps converge to within 3 %
            mean_tol, sd_tol = 0.25 * sd, 0.2
        else:
            # Monte Carlo standard errors at the run's own ESS: sd/sqrt(ess) for the
            # mean, 1/sqrt(2 ess) relative for the sd; four of each
            ess = rows[name]["ess"]
            mean_tol, sd_tol = 4 * sd / math.sqrt(ess), 4 / math.sqrt(2 * ess)
        assert abs(rows[name]["mean"] - mean) < mean_tol, (rows[name], mean, sd)
        assert abs(rows[name]["sd"] / sd - 1) < sd_tol, (rows[name], mean, sd)


def _regression_posterior(data: Path) -> dict[str, tuple[float, float]]:
    """Exact posterior (mean, sd) of slope and intercept: Normal(0, 5^2) priors, known
    noise ``se``: precision X^T S^-1 X + I/25 with X = [x, 1] (conjugate regression)."""
    d = torch.load(data, weights_only=True)
    x, y, se = (d[k].double().flatten() for k in ("x", "y", "se"))
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    w = 1 / se**2
    precision = design.T @ (w[:, None] * design) + torch.eye(2, dtype=torch.float64) / 25
    cov = torch.linalg.inv(precision)
    mean = cov @ (design.T @ (w * y))
    sd = cov.diagonal().sqrt()
    return {
        "slope": (float(mean[0]), float(sd[0])),
        "intercept": (float(mean[1]), float(sd[1])),
    }


@pytest.mark.slow
def test_readme_main_job_with_defaults(tmp_path: Path) -> None:
    """The README's command with its default steps: the loss drops by more than half."""
    result = installed("fit", REFERENCE, "--plot", tmp_path / "loss.png", timeout=600)
    assert result.code == 0, result.err
    loss = next(ln for ln in result.out.splitlines() if ln.startswith("loss (negative ELBO): "))
    first, last = (float(v) for v in loss.split(": ")[1].split(" (")[0].split(" -> "))
    assert last < 0.5 * first, loss
    assert "SVI, 300/300 steps" in result.out
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "vanilla_rnn_lm.state.pt").is_file()


TINY_LM = """\
object Token : FinSet 5
object Embedded : Real 2
object Hidden : Real 3
morphism tok_embed : Token -> Embedded [role=embed]
morphism cell : Embedded * Hidden -> Hidden [role=kernel, scale=0.1, param_source=linear] ~ Normal
morphism lm_head : Hidden -> Token [role=kernel, param_source=linear] ~ Categorical
let backbone = tok_embed >> scan(cell)
program tiny_lm : Token -> Token
    sample h <- backbone
    observe next_token : Token <- lm_head(h)
    return next_token
export tiny_lm
"""


def test_nuts_state_holds_the_posterior_mean_weights(tmp_path: Path) -> None:
    program = tmp_path / "tiny.qvr"
    program.write_text(TINY_LM)
    state = tmp_path / "tiny.state.pt"
    result = fit(
        tmp_path, "--method", "nuts", "--warmup", "10", "--samples", "10", "--chains", "1",
        "--length", "3", "--state", state, program=program,
    )  # fmt: skip
    assert result.code == 0, result.err
    blocks = [ln.split()[0] for ln in result.out.splitlines() if ln.startswith("  _step_")]
    assert "_step_h.parts.0.weight" in blocks  # every weight is a posterior block
    saved = torch.load(state, weights_only=True)
    assert saved["method"] == "nuts" and saved["steps_done"] == 10
    from quivers.dsl import load

    model = load(program).morphism
    assert set(saved["state_dict"]) == set(model.state_dict())
    again = qvr("sample", program, "--from", state, "--length", "3")
    assert again.code == 0, again.err
    assert (
        f"with the fitted weights of {state} (nuts, 10 draws per chain, posterior mean)"
        in again.out
    )


def test_a_diverging_fit_keeps_the_last_good_state(tmp_path: Path) -> None:
    state = tmp_path / "s.pt"
    result = fit(tmp_path, "--lr", "1000", "--steps", "20", "--state", state, "--progress", "none")
    line = one_clear_error(result, "the fit diverged at step 2", "try a smaller --lr")
    assert "the outputs are from the last good step" in line
    assert result.out.startswith("vanilla_rnn_lm: SVI, 1/20 steps")
    saved = torch.load(state, weights_only=True)
    assert saved["steps_done"] == 1
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())


# Examples `qvr fit` cannot fit without --data: grammars (deduction blocks are fitted
# with quivers.stochastic.deduction, tests/runtime/test_deduction_learning.py). Plate
# programs are fitted: their synthetic corpus has one row per plate element and host
# data of the kind their uses need (quivers/jobs/data.py, synthetic_inputs).
NOT_FIT_BY_THE_CLI_WITHOUT_DATA = {
    "markov_chain", "ppca",  # exports of a morphism expression: the CLI fits programs
    "ccg", "mcfg", "pcfg", "type_logical",  # deduction grammars
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "example",
    [
        p
        for p in sorted(REFERENCE.parent.glob("*.qvr"))
        if p.stem not in NOT_FIT_BY_THE_CLI_WITHOUT_DATA
    ],
    ids=lambda p: p.stem,
)  # fmt: skip
@pytest.mark.parametrize("method", ["svi", "nuts"])
def test_every_example_fits_briefly(tmp_path: Path, example: Path, method: str) -> None:
    budget = ["--steps", "3"] if method == "svi" else ["--warmup", "3", "--samples", "3"]
    result = fit(
        tmp_path, "--method", method, "--chains", "1", "--length", "3", "--max-tree-depth", "2",
        *budget, program=example,
    )  # fmt: skip
    if example.stem == "gaussian_mixture":  # a discrete latent: guides and NUTS refuse it
        one_clear_error(result, "discrete", "'z'")
        return
    assert result.code == 0, result.err
    assert (tmp_path / f"{example.stem}.state.pt").is_file()
    again = qvr("sample", example, "--from", tmp_path / f"{example.stem}.state.pt", "--length", "3")
    assert again.code == 0, again.err


def test_nuts_fit_saves_an_arviz_run_file(tmp_path: Path) -> None:
    """--save writes the vectorised chains' draws and sampler statistics as netCDF."""
    az = pytest.importorskip("arviz")
    program, data = tmp_path / "regression.qvr", tmp_path / "line.pt"
    program.write_text(REGRESSION)
    regression_data(data, slope=1.5, intercept=-0.7, n=30)
    run = tmp_path / "run.nc"
    result = fit(
        tmp_path, "--method", "nuts", "--data", data, "--warmup", "30", "--samples", "20",
        "--chains", "2", "--device", "cpu", "--save", run, program=program,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert f"run: {run}" in result.out
    saved = az.from_netcdf(str(run))
    assert saved.posterior["slope"].shape == (2, 20)
    assert saved.sample_stats["energy"].shape == (2, 20)
    assert saved.sample_stats["diverging"].shape == (2, 20)
    assert saved.observed_data["y"].shape[0] == 30
    assert "2 chains" in result.err  # vectorised progress: one line for both chains


def test_fit_refuses_a_bad_device_and_save_without_nuts(tmp_path: Path) -> None:
    bad = fit(tmp_path, "--method", "nuts", "--device", "tpu9", "--samples", "2", "--warmup", "0")
    one_clear_error(bad, "--device must be one of cpu, cuda, mps, auto")
    svi = fit(tmp_path, "--steps", "2", "--save", tmp_path / "r.nc")
    one_clear_error(svi, "--save", "--method nuts")


def _regression_fit(tmp_path: Path, *args: str) -> tuple[Path, Path]:
    program, data = tmp_path / "regression.qvr", tmp_path / "line.pt"
    program.write_text(REGRESSION)
    regression_data(data, slope=1.5, intercept=-0.7, n=20)
    return program, data


def test_compile_takes_the_compiled_path_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--compile hands the potential and its gradient to torch.compile (one fullgraph
    function, called for the leapfrog steps) and the summary says so. torch.compile is
    replaced by a spy that returns the function it is given, uncompiled, and so is the
    compilation of the NUTS transition's graph (``inductor.compile_traced``): TorchInductor
    takes tens of seconds (the slow test below runs it for real), and what is checked
    here is that the CLI's run reaches the compiled paths and reports it."""
    program, data = _regression_fit(tmp_path)
    given: list[dict[str, object]] = []
    calls = []

    def spy(fn, **kwargs):
        given.append(kwargs)

        def compiled(*args):
            calls.append(len(args))
            return fn(*args)

        return compiled

    traced = []

    def graph_spy(gm, inputs):
        traced.append(gm)
        return gm  # the traced transition, run as an FX graph, uncompiled

    monkeypatch.setattr(torch, "compile", spy)
    monkeypatch.setattr(inductor, "compile_traced", graph_spy)
    budget = ("--warmup", "5", "--samples", "5", "--data", str(data), "--progress", "none")
    result = fit(tmp_path, "--method", "nuts", *budget, "--compile", program=program)
    assert result.code == 0, result.err
    assert given and all(kw == {"fullgraph": True, "backend": inductor.backend} for kw in given)
    assert traced  # the NUTS transition's graph was handed to TorchInductor too
    assert len(calls) > 10  # the leapfrog steps' evaluations, not only a first call
    out = result.out.splitlines()
    assert out[1] == "compile: the potential and its gradient ran through torch.compile"


def test_a_compile_fallback_is_reported_not_called_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a machine without a C++ compiler: the compiled function raises on its first
    call, the real fallback (CompileFallbackWarning, eager evaluation) runs, and the
    run's JSON and text say it was not compiled, and why."""
    program, data = _regression_fit(tmp_path)

    def broken(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("InductorError: CppCompileError: C++ compiler not found")

        return fail

    def broken_graph(gm, inputs):
        raise RuntimeError("InductorError: CppCompileError: C++ compiler not found")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(inductor, "compile_traced", broken_graph)
    budget = ("--warmup", "5", "--samples", "5", "--data", str(data), "--progress", "none")
    result = fit(
        tmp_path, "--method", "nuts", *budget, "--compile", "--format", "json", program=program
    )
    assert result.code == 0, result.err
    wire = json.loads(result.out)
    assert wire["ok"] and wire["compiled"] is False
    # the potential's two compiled functions failed alike (said once), and so did the
    # NUTS transition's graph (said apart: it names what fell back)
    potential, transition = wire["compile_fallback"]
    assert "potential" in potential and "NUTS transition" in transition
    for reason in (potential, transition):
        assert "C++ compiler not found" in reason and "running it eagerly" in reason
    assert "Warning" not in result.err  # the result says it, not a stray warning
    text = fit(tmp_path, "--method", "nuts", *budget, "--compile", program=program)
    assert text.code == 0, text.err
    assert text.out.splitlines()[1] == (
        f"compile: not compiled, the run fell back to eager evaluation: {potential}; {transition}"
    )


@pytest.mark.slow
def test_compile_really_compiles_with_torch_compile(tmp_path: Path) -> None:
    """One real TorchInductor compilation (seconds): dynamo captures graphs, and the run
    says compiled, or, on a machine without a C++ compiler, that it fell back."""
    from torch._dynamo.utils import counters

    program, data = _regression_fit(tmp_path)
    before = counters["stats"]["unique_graphs"]
    result = fit(
        tmp_path, "--method", "nuts", "--chains", "1", "--warmup", "5", "--samples", "5",
        "--data", str(data), "--compile", "--format", "json", "--progress", "none",
        "--max-tree-depth", "2",  # a small transition graph: seconds, not a minute, to compile
        program=program,
    )  # fmt: skip
    assert result.code == 0, result.err
    wire = json.loads(result.out)
    assert counters["stats"]["unique_graphs"] > before  # dynamo traced the potential
    if wire["compiled"]:
        assert "compile_fallback" not in wire
    else:  # only where TorchInductor finds no C++ compiler (CI installs g++)
        assert not any(shutil.which(c) for c in ("g++", "clang++", "c++")), wire
        assert any("could not compile" in r for r in wire["compile_fallback"]), wire


def test_compile_is_refused_with_svi(tmp_path: Path) -> None:
    svi = fit(tmp_path, "--steps", "2", "--compile")
    one_clear_error(svi, "--compile", "SVI has no compiled path", "--method nuts")
