"""Sampling and fitting a QVR program end to end: what ``qvr sample``/``qvr fit`` and
the language server's run commands do.

Each run compiles the source, prepares data (synthetic from the model unless a file is
given), runs, and returns a :class:`~quivers.jobs.protocol.RunResult` (its JSON form:
``docs/dev/editor-protocol.md``). Options are a parsed
:class:`~quivers.jobs.protocol.RunOptions`. Progress goes to a callback as
``(fraction, message)``; a ``should_stop`` callable is polled between iterations (and,
for sampling, between the phases of the run), and a stopped run returns with
``cancelled`` set and what was done so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch

from quivers.compiled import Program
from quivers.compiler import QvrCompileError
from quivers.inference import AutoNormalGuide, MCMCResult
from quivers.inference.compile_status import recording_compile_fallbacks
from quivers.jobs.data import (
    DataError,
    Dataset,
    draw_weights,
    load_file,
    run_arguments,
    synthetic,
)
from quivers.jobs.protocol import OptionError, RunKind, RunOptions, RunResult, posterior_row
from quivers.runtime.errors import QvrDataError
from quivers.runtime.program import ProgramModule
from quivers.runtime.trace import TraceT, leaves

Progress = Callable[[float, str], None]
ShouldStop = Callable[[], bool]
Runner = Callable[[str, str, RunOptions, Progress | None, ShouldStop | None], RunResult]


class RunError(Exception):
    """A run that could not start or failed in the model or data."""


def compile_target(text: str, path: str, target: str | None) -> tuple[Program, ProgramModule, str]:
    from quivers.dsl import loads

    prog = loads(text, path)
    model: object
    if target is None:
        model = prog.morphism
        name = prog.module.exports[0][0] or "export"
    else:
        if target not in prog.module.programs:
            raise RunError(f"no program named '{target}' in {path}")
        model, name = prog.module.programs[target], target
    if not isinstance(model, ProgramModule):
        raise RunError(f"'{name}' is a morphism expression; sampling and fitting need a program")
    return prog, model, name


def compile_seeded(text: str, path: str, opts: RunOptions) -> tuple[Program, ProgramModule, str]:
    """Seed, then compile: as on the reference page, the seed comes before loading the
    program, so the synthetic corpus drawn next is the page's own."""
    torch.manual_seed(opts.seed)
    return compile_target(text, path, opts.target)


def prepare(model: ProgramModule, opts: RunOptions) -> Dataset:
    """The data of a fit: the file, or the synthetic corpus (call right after
    :func:`compile_seeded`)."""
    if opts.data:
        return load_file(opts.data, model, run_arguments(model, opts.length))
    return synthetic(model, opts.batch, opts.length, seed=None)


def load_state(model: ProgramModule, state: Mapping[str, torch.Tensor]) -> None:
    """Load fitted weights, or raise a RunError naming what does not match."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(
                f"unknown {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"
            )
        raise RunError(f"the saved state does not fit this program: {'; '.join(parts)}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise RunError(
                f"the saved state does not fit this program: '{key}' has shape "
                f"{tuple(value.shape)}, the program expects {tuple(own[key].shape)}"
            )
    model.load_state_dict(state)


def _refit_setup(
    text: str, path: str, opts: RunOptions, progress: Progress | None
) -> tuple[ProgramModule, str, Dataset]:
    """The reference page's recipe: compile, draw (or load) the data, then fresh
    weights under the next seed for the fit."""
    _, model, name = compile_seeded(text, path, opts)
    data = prepare(model, opts)
    if progress:
        progress(0.0, f"data: {data.describe()}")
    fresh_weights(model, opts.seed + 1)
    device = resolve_device(opts.device)
    if device.type != "cpu":
        model.to(device)
        data = Dataset(
            data.x.to(device) if isinstance(data.x, torch.Tensor) else data.x,
            {
                k: v.to(device) if isinstance(v, torch.Tensor) else v
                for k, v in data.observations.items()
            },
            data.source,
        )
    return model, name, data


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N``, ``mps``, or ``auto``: CUDA, then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {name!r} asked for, but torch sees no CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RunError(f"device {name!r} asked for, but torch sees no MPS device")
    return device


def fresh_weights(model: ProgramModule, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


# ------------------------------------------------------------------ summaries


def tensor_stats(t: Any) -> dict[str, Any]:
    if isinstance(t, tuple | list):
        parts = leaves(t)
        return {"parts": [tensor_stats(p) for p in parts]}
    t = torch.as_tensor(t).detach()
    f = t.float()
    finite = f[torch.isfinite(f)]
    return {
        "shape": list(t.shape),
        "dtype": str(t.dtype).removeprefix("torch."),
        "mean": _num(finite.mean()) if finite.numel() else None,
        "sd": _num(finite.std()) if finite.numel() > 1 else 0.0,
        "min": _num(finite.min()) if finite.numel() else None,
        "max": _num(finite.max()) if finite.numel() else None,
    }


def _num(t: torch.Tensor) -> float:
    v = float(t)
    return v if math.isfinite(v) else float("nan")


def _samples_summary(
    model: ProgramModule, x: torch.Tensor, obs: dict[str, torch.Tensor], run: dict[str, int]
) -> dict[str, Any]:
    with torch.no_grad():
        trace = model.trace(x, obs, **run)
    return {name: tensor_stats(site.value) for name, site in trace.items()}


def guarded(kind: RunKind, fn: Callable[[], RunResult]) -> RunResult:
    """Run ``fn``, turning a model or data failure into a result with ``ok`` false."""
    try:
        return fn()
    except QvrCompileError as exc:
        return RunResult.failure(kind, str(exc))
    except (QvrDataError, DataError, RunError) as exc:
        return RunResult.failure(kind, str(exc))
    except Exception as exc:  # a failure inside the model: report it, keep serving
        return RunResult.failure(kind, f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------- runs


def run_sample(
    text: str,
    path: str,
    opts: RunOptions,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    model_state: Mapping[str, torch.Tensor] | None = None,
) -> RunResult:
    """Draw once from the program: every site's summary and the return value's.

    ``should_stop`` is polled after compiling, after preparing the inputs and before
    the draw (a single draw cannot be interrupted inside the model): a stopped run
    returns ``cancelled`` with no samples.
    """
    start = time.perf_counter()

    def stopped(name: str | None, data: Dataset | None = None) -> RunResult | None:
        if should_stop is None or not should_stop():
            return None
        described = data.describe() if data is not None else None
        return RunResult("sample", name, cancelled=True, elapsed=_since(start), data=described)

    if (early := stopped(opts.target)) is not None:
        return early
    _, model, name = compile_seeded(text, path, opts)
    run = run_arguments(model, opts.length)
    if model_state is not None:  # the fitted weights, then the draws under the seed
        load_state(model, model_state)
        torch.manual_seed(opts.seed)
    else:  # right after the seeded compile: the reference page's weights
        draw_weights(model)
    if opts.data:
        data = load_file(opts.data, model, run, require_observed=False)
    else:  # random prompts (and host data), then the draw: the page's corpus
        from quivers.jobs.data import synthetic_inputs

        data = Dataset(*synthetic_inputs(model, opts.n, opts.length), "synthetic")
    if (early := stopped(name, data)) is not None:
        return early
    if progress:
        progress(0.5, f"drawing from {name}")
    hosts = {k: v for k, v in data.observations.items() if k in model.host_names}
    with torch.no_grad():  # the same RNG state twice: the returned value is the traced draw
        rng = torch.get_rng_state()
        trace = model.trace(data.x, hosts, **run)
        torch.set_rng_state(rng)
        returned = model.rsample(data.x, hosts, **run)
    if progress:
        progress(1.0, "done")
    return RunResult(
        "sample",
        name,
        elapsed=_since(start),
        samples={n: tensor_stats(s.value) for n, s in trace.items()},
        returned=tensor_stats(returned),
        log_density={n: tensor_stats(s.log_prob) for n, s in trace.items()},
        data=data.describe(),
        observed=sorted(model.observed_names),
        draws={"x": data.x, **hosts, **{n: s.value for n, s in trace.items()}},
    )


def run_svi(
    text: str,
    path: str,
    opts: RunOptions,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> RunResult:
    from quivers.inference import ELBO, SVI, InferenceCancelled, ProgressInfo

    start = time.perf_counter()
    model, name, data = _refit_setup(text, path, opts, progress)
    guide = AutoNormalGuide(model, observed_names=model.observed_names)
    run = run_arguments(model, opts.length)
    guide.setup(data.x, data.observations, **run)
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=opts.lr)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))

    completed: list[float] = []  # the losses of finished steps, kept if a later one fails

    def report(info: ProgressInfo) -> None:
        loss = info.stats.get("loss", float("nan"))
        completed.append(float(loss))
        if progress:
            progress(
                info.iteration / info.total, f"step {info.iteration}/{info.total} · loss {loss:.1f}"
            )

    cancelled = False
    diverged: str | None = None
    try:
        losses = svi.run(data.x, data.observations, opts.steps, report, should_stop, **run)
    except InferenceCancelled as stop:
        losses, cancelled = list(stop.partial or []), True
    except FloatingPointError as exc:  # the failing step changed nothing: keep the others
        losses, diverged = list(completed), f"step {len(completed) + 1}: {exc}"
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    finite = all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point())
    posterior: list[dict[str, Any]]
    samples: dict[str, Any]
    try:
        posterior = _guide_posterior(guide, model, data, run)
        samples = _samples_summary(model, data.x, data.observations, run)
    except Exception:
        if diverged is None:
            raise
        posterior, samples = [], {}
    return RunResult(
        "svi",
        name,
        # a diverged fit fails for clients, with what was done before it
        ok=diverged is None,
        cancelled=cancelled,
        error=None if diverged is None else f"the fit diverged at {diverged}",
        elapsed=_since(start),
        losses=[round(v, 4) for v in losses],
        posterior=posterior,
        samples=samples,
        data=data.describe(),
        diverged=diverged,
        state=weights if finite else None,
    )


GUIDE_DRAWS = 200
GUIDE_DRAW_BUDGET = 5_000_000  # numbers drawn at most, for large sites


def _guide_posterior(
    guide: AutoNormalGuide, model: ProgramModule, data: Dataset, run: dict[str, int]
) -> list[dict[str, Any]]:
    """Mean and sd of each latent site under the guide, in the site's own (constrained)
    space, from draws; a site whose draws fail falls back to the unconstrained loc/scale."""
    names = list(model.latent_names)
    draws: dict[str, TraceT] = {}
    try:
        with torch.no_grad():
            width = max(int(guide.site_loc_scale(n)[0].numel()) for n in names) if names else 1
            count = max(2, min(GUIDE_DRAWS, GUIDE_DRAW_BUDGET // max(width, 1)))
            draws = guide.sample(data.x, data.observations, num_particles=count, **run).values
    except Exception:  # a guide without draws: use its parameters below
        draws = {}
    rows = []
    for site in names:
        value = draws.get(site)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.shape[0] > 1:
            v = value.detach().float()
            rows.append(posterior_row(site, v.shape[1:], _num(v.mean()), _num(v.std(dim=0).mean())))
            continue
        try:
            loc, scale = guide.site_loc_scale(site)
        except (KeyError, AttributeError):
            continue
        rows.append(posterior_row(site, loc.shape, _num(loc.mean()), _num(scale.mean())))
    return rows


def run_nuts(
    text: str,
    path: str,
    opts: RunOptions,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> RunResult:
    from quivers.inference import (
        MCMC,
        InferenceCancelled,
        NUTSKernel,
        ProgressInfo,
        bayesian_lift_parameters,
    )

    start = time.perf_counter()
    model, name, data = _refit_setup(text, path, opts, progress)
    run = run_arguments(model, opts.length)
    with torch.no_grad():
        trace = model.trace(data.x, data.observations, **run)
    latents: dict[str, Any] = {}
    for site_name, site in trace.items():
        if site.observed:
            continue
        if any(not leaf.is_floating_point() for leaf in leaves(site.trace)):
            raise RunError(
                f"NUTS needs continuous latent sites, but '{site_name}' is discrete; sum it "
                f"out with `marginalize {site_name} <- ...` and an indented body "
                "(docs/language.md section 19)"
            )
        latents[site_name] = _trace_shape(site.trace)
    lifted, lx, lobs = bayesian_lift_parameters(
        model, data.x, data.observations, prior_scale=1.0, additional_latents=latents, **run
    )
    kernel = NUTSKernel(
        step_size=opts.step_size, max_tree_depth=opts.max_tree_depth, target_accept=0.8
    )
    mc = MCMC(
        kernel,
        num_warmup=opts.warmup,
        num_samples=opts.samples,
        num_chains=opts.chains,
        seed=opts.seed,
        chain_method=opts.chain_method,
        compile=opts.compile,
    )
    total = (opts.warmup + opts.samples) * opts.chains

    def report(info: ProgressInfo) -> None:
        if not progress:
            return
        # vectorised chains (chain -1) advance together: one report for all of them
        together = info.chain < 0
        done = info.iteration * (opts.chains if together else 1)
        done += 0 if together else info.chain * (opts.warmup + opts.samples)
        if info.phase == "sampling":
            done += opts.warmup * (opts.chains if together else 1)
        accept = info.stats.get("accept_prob", float("nan"))
        which = f"{opts.chains} chains" if together else f"chain {info.chain + 1}"
        progress(
            min(done / max(total, 1), 1.0),
            f"{info.phase} {info.iteration}/{info.total} · {which} · accept {accept:.2f}",
        )

    cancelled = False
    result: MCMCResult | None
    # a fallback to eager evaluation is part of the result, not a stray warning: the
    # user must never be told "compiled" of a run that was not
    with recording_compile_fallbacks() as fallbacks:
        try:
            result = mc.run(
                lifted, lx, lobs, progress=report, should_stop=should_stop, run_kwargs=run
            )
        except InferenceCancelled as stop:
            cancelled = True
            result = stop.partial
    compiled, fallback = opts.compile and not fallbacks, list(fallbacks) or None
    if result is None:
        return RunResult(
            "nuts",
            name,
            cancelled=True,
            elapsed=_since(start),
            posterior=[],
            samples={},
            diagnostics={},
            data=data.describe(),
            compiled=compiled,
            compile_fallback=fallback,
        )
    diagnostics = {
        "acceptance": [round(float(a), 4) for a in result.acceptance_rates],
        "divergences": [int(d) for d in result.divergence_counts],
        # warmup's apart: a funnel's divergences come while the step size adapts, and a
        # run whose kept draws show none can still be biased (docs/dev/inference.md)
        "warmup_divergences": [int(d) for d in result.warmup_divergence_counts],
        "step_size": [float(s) for s in result.step_sizes],
    }
    weights = set(lifted.param_names)  # the lifted parameters are not the program's sites
    return RunResult(
        "nuts",
        name,
        cancelled=cancelled,
        elapsed=_since(start),
        posterior=_posterior_table(result),
        samples={n: tensor_stats(v) for n, v in result.samples.items() if n not in weights},
        diagnostics=diagnostics,
        data=data.describe(),
        mcmc=result,
        state=_posterior_mean_state(model, result),
        compiled=compiled,
        compile_fallback=fallback,
    )


RUNNERS: dict[RunKind, Runner] = {"sample": run_sample, "svi": run_svi, "nuts": run_nuts}


def execute(
    kind: RunKind,
    text: str,
    path: str,
    raw_options: Mapping[str, Any] | None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> RunResult:
    """A client's run (the worker's job): parse its options, run, and report the
    option keys that were ignored; a bad option fails the run naming the key."""
    try:
        opts, ignored = RunOptions.parse(raw_options, kind)
    except OptionError as exc:
        return RunResult.failure(kind, str(exc))
    if kind == "svi" and opts.corpus:  # a text corpus: minibatch SVI with checkpoints
        from quivers.jobs.corpus_job import run_corpus_fit

        given = {k for k, v in (raw_options or {}).items() if v is not None}
        result = guarded(
            kind, lambda: run_corpus_fit(text, path, opts, progress, should_stop, given)
        )
    else:
        result = guarded(kind, lambda: RUNNERS[kind](text, path, opts, progress, should_stop))
    return replace(result, ignored_options=ignored)


def _trace_shape(trace: TraceT) -> Any:
    """A trace's shape; a tuple of shapes for a composite trace."""
    if isinstance(trace, tuple | list):
        return tuple(_trace_shape(t) for t in trace)
    return tuple(trace.shape)


def _posterior_mean_state(model: ProgramModule, result: MCMCResult) -> dict[str, torch.Tensor]:
    """The model's state with every lifted parameter at its posterior mean."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for name, draws in result.samples.items():
        if name in state and isinstance(draws, torch.Tensor) and draws.shape[1] > 0:
            mean = draws.float().mean(dim=(0, 1))
            if tuple(mean.shape) == tuple(state[name].shape):
                state[name] = mean.to(dtype=state[name].dtype, device="cpu")
    return state


def _posterior_table(result: MCMCResult) -> list[dict[str, Any]]:
    """One row per site or weight; a composite trace gives one row per part (``h[0]``)."""
    rows = []
    for name, draws in result.samples.items():
        rh, es = result.r_hat.get(name), result.ess.get(name)
        if isinstance(draws, tuple | list):  # parts in order, nested composites flattened
            parts = leaves(draws)
            rhs = leaves(rh) if isinstance(rh, tuple | list) else []
            ess_parts = leaves(es) if isinstance(es, tuple | list) else []
            for i, part in enumerate(parts):
                rh_i = rhs[i] if len(rhs) == len(parts) else None
                es_i = ess_parts[i] if len(ess_parts) == len(parts) else None
                rows.append(_posterior_row(f"{name}[{i}]", part, rh_i, es_i))
        else:
            rows.append(_posterior_row(name, draws, rh, es))
    return rows


def _posterior_row(name: str, draws: torch.Tensor, r_hat: Any, ess: Any) -> dict[str, Any]:
    flat = draws.reshape(draws.shape[0] * draws.shape[1], -1).float()
    rh = torch.as_tensor(r_hat).float() if r_hat is not None else None
    es = torch.as_tensor(ess).float() if ess is not None else None
    return posterior_row(
        name,
        draws.shape[2:],
        _num(flat.mean()),
        _num(flat.std(dim=0).mean()) if flat.shape[0] > 1 else 0.0,
        r_hat=_num(rh.nan_to_num(nan=1.0).max()) if rh is not None and rh.numel() else None,
        ess=_num(es.nan_to_num(nan=0.0).min()) if es is not None and es.numel() else None,
    )
