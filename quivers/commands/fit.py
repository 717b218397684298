"""``qvr fit FILE``: fit a program with SVI or NUTS, as on the reference page.

Without ``--data`` the corpus is synthetic: the model's weights are fixed to a draw
under ``--seed`` and a corpus is forward-sampled, then the fit starts again from
fresh weights drawn under ``--seed + 1``. Progress goes to stderr (one updating line
on a terminal, plain lines otherwise), the summary to stdout. The fit writes a plot
(``--plot``; loss curve for SVI, trace and rank plots for NUTS) and the fitted state
(``--state``; default: ``<FILE stem>.state.pt`` next to the plot) that
``qvr sample --from`` reads. ``--compile`` (NUTS only) runs the potential and its
gradient through ``torch.compile``; the summary (and ``compiled``/``compile_fallback``
in ``--format json``) says whether it did or fell back to eager evaluation, and why.

Ctrl-C stops the fit between two steps: the partial result is summarised, the plot
and the state of the last completed step are written, and the exit code is 130.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quivers.commands import (
    CliError,
    read_source,
    require_valid,
    run_failure,
    run_options,
    torch_threads,
)
from quivers.commands.report import num, shape, table

if TYPE_CHECKING:
    from quivers.jobs.protocol import RunResult

PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
EXIT_INTERRUPTED = 130


def output_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from quivers.jobs.protocol import output_stem

    source = Path(args.file)
    stem = output_stem(source, args.target)  # two exports of one file: two outputs
    kind = "loss" if args.method == "svi" else "nuts"
    plot = Path(args.plot) if args.plot else source.with_name(f"{stem}.{kind}.png")
    state = Path(args.state) if args.state else plot.with_name(f"{stem}.state.pt")
    if plot.suffix.lower() not in PLOT_SUFFIXES:
        raise CliError(f"{plot}: unsupported plot type (use {', '.join(PLOT_SUFFIXES)})")
    for p in (plot, state):
        if p.is_dir():
            raise CliError(f"{p}: is a directory, expected a file name")
    return plot, state


def run(args: argparse.Namespace) -> int:
    from quivers.commands import fit_corpus
    from quivers.jobs.corpus import is_text_corpus

    text = read_source(args.file)
    if args.save and args.method != "nuts":
        raise CliError("--save writes NUTS draws: use it with --method nuts")
    if args.compile and args.method != "nuts":
        raise CliError(
            "--compile compiles the NUTS potential and its gradient; SVI has no compiled "
            "path: use it with --method nuts"
        )
    corpus = bool(args.data) and args.method == "svi" and is_text_corpus(args.data)
    if not corpus:
        fit_corpus.reject_corpus_options(args)
        opts = run_options(args, args.method)
    plot, state_path = output_paths(args)
    require_valid(text, args.file)
    if corpus:
        return fit_corpus.run(args, text, plot, state_path)

    from quivers.commands.progress import ProgressBar, StopOnInterrupt
    from quivers.jobs.run import RUNNERS

    runner = RUNNERS[args.method]
    # torch's note when a non-finite loss becomes a float: the divergence message says it
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    bar = ProgressBar(f"fit {args.method}", tty={"bar": True, "plain": False}.get(args.progress))
    with StopOnInterrupt() as stop, torch_threads(args.threads):
        try:
            result = runner(
                text, args.file, opts, bar.update if args.progress != "none" else None, stop
            )
        except Exception as exc:
            bar.close()
            raise _failure(exc, args) from None
    bar.close()
    cancelled = result.cancelled
    saved = _save_outputs(result, args, plot, state_path)
    if args.format == "json":
        out = result.to_wire()
        out.update(
            plot=str(saved["plot"]) if saved["plot"] else None,
            state_file=str(saved["state"]) if saved["state"] else None,
        )
        print(json.dumps(out, indent=2))
    else:
        print(summary(result, args, saved))
    if result.diverged:
        kept = "the outputs are from the last good step" if saved["state"] else "nothing saved"
        raise CliError(f"the fit diverged at {result.diverged}; {kept} (try a smaller --lr)")
    return EXIT_INTERRUPTED if cancelled else 0


def _failure(exc: BaseException, args: argparse.Namespace) -> CliError:
    from quivers.compiler import QvrCompileError
    from quivers.jobs.data import DataError
    from quivers.jobs.run import RunError
    from quivers.runtime.errors import QvrDataError

    if isinstance(exc, QvrCompileError):
        return CliError("\n".join(d.render(args.file) for d in exc.diagnostics), raw=True)
    if isinstance(exc, DataError | QvrDataError):
        return run_failure(exc, args.data)
    if isinstance(exc, RunError):
        message = str(exc)
        return CliError(message if args.file in message else f"{args.file}: {message}")
    if isinstance(exc, FloatingPointError):
        return CliError(f"the fit diverged: {exc} (try a smaller --lr or --step-size)")
    if isinstance(exc, ValueError):  # the model or guide refused: its message says why
        return CliError(f"cannot fit {args.file}: {exc}")
    return CliError(f"the fit failed in the model: {type(exc).__name__}: {exc}")


def steps_done(result: RunResult) -> int:
    if result.kind == "svi":
        return len(result.losses or [])
    return int(result.mcmc.num_samples) if result.mcmc is not None else 0


def _save_outputs(
    result: RunResult, args: argparse.Namespace, plot: Path, state_path: Path
) -> dict[str, Path | None]:
    from quivers.commands.plots import loss_plot, nuts_plot
    from quivers.commands.state import save_state

    done = steps_done(result)
    saved: dict[str, Path | None] = {"plot": None, "state": None, "run": None}
    if done == 0:
        return saved  # nothing fitted: keep any earlier state and plot
    title = f"{result.target} ({Path(args.file).name})"
    if result.kind == "svi":
        loss_plot(plot, result.losses or [], f"{title}: SVI")
    else:
        nuts_plot(plot, result.mcmc.samples, f"{title}: NUTS")
    saved["plot"] = plot
    if result.kind == "nuts" and args.save:
        from quivers.inference.interop import import_arviz

        try:
            import_arviz()
        except ImportError as err:
            raise CliError(f"--save {args.save}: {err}") from None
        result.mcmc.to_arviz().to_netcdf(str(args.save))
        saved["run"] = Path(args.save)
    state = result.state
    if state is not None:
        save_state(
            state_path,
            state,
            source=str(args.file),
            target=result.target,
            method=result.kind,
            seed=args.seed,
            steps_done=done,
            cancelled=result.cancelled,
        )
        saved["state"] = state_path
    return saved


# ------------------------------------------------------------------- summary


def summary(result: RunResult, args: argparse.Namespace, saved: dict[str, Path | None]) -> str:
    kind = result.kind
    done = steps_done(result)
    lines = []
    if kind == "svi":
        what = f"SVI, {done}/{args.steps} steps (Adam, lr {args.lr})"
    else:
        what = (
            f"NUTS, {args.chains} chain(s) x ({args.warmup} warmup + {args.samples} draws); "
            f"{done} draws kept per chain"
        )
    lines.append(f"{result.target}: {what} in {result.elapsed or 0:.1f} s")
    if kind == "nuts" and args.compile:
        lines.append(_compile_line(result))
    if args.data:
        lines.append(f"data: {args.data} ({result.data or '-'})")
    else:
        lines.append(
            f"data: synthetic, weights drawn under seed {args.seed} "
            f"({result.data or '-'}); refit from fresh weights (seed {args.seed + 1})"
        )
    if result.cancelled:
        if kind == "svi":
            progress = f"{done} steps"
            kept = "the outputs below are from the last completed step"
        else:
            mcmc = result.mcmc
            chains = mcmc.num_chains if mcmc is not None else 0
            if mcmc is None or mcmc.num_samples == args.samples:
                progress = f"{chains} of {args.chains} chain(s)"
                kept = "the outputs below are from the completed chains"
            else:
                progress = f"{done} of {args.samples} draws in {chains} of {args.chains} chain(s)"
                kept = "the outputs below are from the draws made so far"
        lines.append(
            f"stopped by Ctrl-C after {progress}; "
            + (kept if done else "nothing saved (earlier files are kept)")
        )
    if kind == "svi":
        lines.extend(_svi_lines(result))
    else:
        lines.extend(_nuts_lines(result))
    if saved["plot"]:
        lines.append(f"plot: {saved['plot']}")
    if saved["state"]:
        lines.append(
            f"state: {saved['state']}  (reuse: qvr sample {args.file} --from {saved['state']})"
        )
    if saved["run"]:
        lines.append(f"run: {saved['run']}  (ArviZ InferenceData: arviz.from_netcdf)")
    return "\n".join(lines)


def _compile_line(result: RunResult) -> str:
    """Whether ``--compile`` took effect: never "compiled" of a run that fell back."""
    if result.compiled:
        return "compile: the potential and its gradient ran through torch.compile"
    reasons = "; ".join(result.compile_fallback or ["the run recorded no reason"])
    return f"compile: not compiled, the run fell back to eager evaluation: {reasons}"


def _svi_lines(result: RunResult) -> list[str]:
    losses = result.losses or []
    lines = []
    if losses:
        first = losses[0]
        tail = losses[-min(10, len(losses)) :]
        last = sum(tail) / len(tail)
        change = (last - first) / abs(first) * 100 if first else float("nan")
        best = min(range(len(losses)), key=lambda i: losses[i])
        lines.append(
            f"loss (negative ELBO): {num(first, 6)} -> {num(last, 6)} "
            f"(mean of the last {len(tail)} step(s); {change:+.1f}%), "
            f"lowest {num(losses[best], 6)} at step {best + 1}"
        )
    posterior = result.posterior or []
    if posterior:
        lines.append("posterior (guide draws; a block's mean over its entries, sd averaged):")
        lines.append(_posterior_table(posterior))
    state = result.state or {}
    if state:
        count = sum(int(v.numel()) for v in state.values())
        lines.append(f"weights: {len(state)} block(s), {count:,} numbers (point estimates)")
    return lines


def _nuts_lines(result: RunResult) -> list[str]:
    diag = result.diagnostics or {}
    lines = []
    if diag:
        accept = ", ".join(num(a, 3) for a in diag.get("acceptance", []))
        divergences = sum(diag.get("divergences", []))
        warmup = sum(diag.get("warmup_divergences", []))
        steps = ", ".join(num(s, 3) for s in diag.get("step_size", []))
        lines.append(
            f"acceptance per chain: {accept}; divergences: {divergences} "
            f"(warmup: {warmup}); step size: {steps}"
        )
        if divergences or warmup:
            lines.append(_divergence_warning(divergences, warmup))
    posterior = result.posterior or []
    if posterior:
        lines.append(
            "posterior (draws; a block's mean over its entries, sd averaged, "
            "r_hat its worst entry, ess its lowest):"
        )
        lines.append(_posterior_table(posterior))
    return lines


def _divergence_warning(kept: int, warmup: int) -> str:
    """What divergent transitions mean for the draws (Betancourt 2017): warmup's count
    too, since a funnel's come while the step size adapts and the kept draws of a
    biased run can show none."""
    counts = [f"{kept} among the kept draws"] if kept else []
    counts += [f"{warmup} during warmup"] if warmup else []
    return (
        f"warning: {' and '.join(counts)} diverged: NUTS met curvature its step size "
        "cannot follow (a funnel?) and may not have explored that region, so the draws "
        "can be biased; check r_hat and ess, and try a non-centred form of the model or "
        "a longer --warmup"
    )


def _posterior_table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            r["name"],
            shape(r.get("shape")),
            num(r.get("mean")),
            num(r.get("sd")),
            num(r.get("r_hat"), 3),
            num(r.get("ess"), 3),
        ]
        for r in rows
    ]
    return table(["block", "shape", "mean", "sd", "r_hat", "ess"], cells)
