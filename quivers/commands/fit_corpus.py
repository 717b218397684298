"""``qvr fit FILE --data corpus.txt``: minibatch SVI of a token model on a text corpus.

The corpus becomes rows of ``--seq-len`` bytes with next-byte targets
(:mod:`quivers.jobs.corpus`); the fit runs ``--epochs`` passes of ``--batch-size``
rows, scores the held-out rows (``--val-fraction``) in bits per byte and compares
them with a unigram baseline. The state file it writes is also a checkpoint:
``--checkpoint-every N`` rewrites it (atomically) every N steps and at the end,
Ctrl-C writes it before exiting 130, and ``--resume STATE`` continues from one,
ending with the weights an uninterrupted run would have. With ``--distributed``
the process is one ``torchrun`` worker (see ``docs/dev/scaling.md``): only rank 0
reports and writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from quivers.commands import CliError, run_failure, run_options, torch_threads
from quivers.commands.report import num

EXIT_INTERRUPTED = 130
CORPUS_ONLY = (
    "seq_len",
    "batch_size",
    "epochs",
    "val_fraction",
    "guide",
    "clip_norm",
    "eval_every",
    "checkpoint_every",
    "resume",
)


def _given(args: argparse.Namespace, key: str) -> bool:
    return bool(getattr(args, f"{key}_given", False))


def reject_corpus_options(args: argparse.Namespace) -> None:
    """Corpus options without a text corpus are a usage mistake: say so."""
    given = [o for o in CORPUS_ONLY if _given(args, o)]
    if args.distributed:
        given.append("distributed")
    if given:
        flags = ", ".join(_flag(o) for o in given)
        raise CliError(f"{flags}: only for a text corpus (--data FILE.txt with --method svi)")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _options(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The fit's options: the flags (validated by the run contract), except that a
    resumed fit keeps its checkpoint's (a flag that contradicts one is an error)."""
    from quivers.jobs.corpus import OPTIONS, resumed_options
    from quivers.jobs.protocol import CORPUS_LR
    from quivers.jobs.run import RunError

    run_options(args, "svi")  # a bad value is an error naming its flag
    opts = {k: getattr(args, k) for k in OPTIONS}
    given = [k for k in OPTIONS if _given(args, k)]
    try:
        opts = resumed_options(opts, given, saved, str(args.resume), _flag)
    except RunError as exc:
        raise CliError(str(exc)) from None
    if not _given(args, "lr"):
        args.lr = CORPUS_LR
    return opts


def run(args: argparse.Namespace, text: str, plot: Path, state_path: Path) -> int:
    from quivers.commands.state import load_state
    from quivers.jobs.corpus import corpus_device
    from quivers.jobs.run import RunError

    saved = load_state(args.resume) if args.resume else None
    opts = _options(args, saved)
    try:
        device = corpus_device(args.device, args.distributed)
    except RunError as exc:
        raise CliError(str(exc)) from None
    rank, world, reduce = 0, 1, None
    if args.distributed:
        from quivers.inference import distributed

        try:
            rank, world = distributed.init_from_env("nccl" if device.type == "cuda" else "gloo")
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
        reduce = distributed.average_gradients
    completed = False
    try:
        code = _fit(args, text, plot, state_path, saved, opts, rank, world, reduce, device)
        completed = True
    finally:
        if args.distributed and not completed:
            from quivers.inference import distributed

            distributed.shutdown()
    if args.distributed:
        from quivers.inference import distributed

        distributed.exit_worker(code)
    return code


def _fit(
    args: argparse.Namespace,
    text: str,
    plot: Path,
    state_path: Path,
    saved: dict[str, Any] | None,
    opts: dict[str, Any],
    rank: int,
    world: int,
    reduce: Any,
    device: Any,
) -> int:
    import warnings

    from quivers.commands.progress import ProgressBar, StopOnInterrupt
    from quivers.jobs.corpus import check_resume, run_corpus, save_checkpoint, setup_from_options
    from quivers.jobs.state import StateError

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    with torch_threads(args.threads):
        try:
            setup = setup_from_options(
                text,
                args.file,
                args.data,
                opts,
                target=args.target,
                lr=args.lr,
                eval_every=args.eval_every,
                device=device,
                num_replicas=world,
                rank=rank,
                reduce=reduce,
            )
            if saved is not None:
                check_resume(saved, setup, str(args.resume), _flag)
            elif world > 1:
                from quivers.inference import distributed

                distributed.broadcast_parameters(setup.fit.svi.parameters())
                distributed.seed_worker(opts["seed"], rank)
        except Exception as exc:
            raise _failure(exc, args) from None

        writer = rank == 0

        def write_state(cancelled: bool = False) -> None:
            """Called on every rank: gathering the RNG states is a collective."""
            ranks = None
            if world > 1:
                from quivers.inference import distributed

                ranks = distributed.gather_rng_states()
            if writer:
                try:
                    save_checkpoint(
                        state_path,
                        setup,
                        source=str(args.file),
                        seed=opts["seed"],
                        options={**opts, "lr": args.lr},
                        cancelled=cancelled,
                        rng_of_ranks=ranks,
                    )
                except StateError as exc:
                    raise CliError(str(exc)) from None

        bar = ProgressBar("fit corpus", tty={"bar": True, "plain": False}.get(args.progress))
        show = writer and args.progress != "none"
        if show:
            bar.note(
                f"data: {args.data} ({setup.info['bytes']:,} bytes; {setup.train_rows:,} "
                f"training rows of {opts['seq_len']} bytes, {setup.held_out_rows:,} held out)"
                + (f"; resuming at step {setup.fit.state.step}" if saved else "")
                + (f"; {world} workers" if world > 1 else "")
            )
        with StopOnInterrupt() as stop:
            try:
                result = run_corpus(
                    setup,
                    bar.update if show else None,
                    stop,
                    write_state,
                    args.checkpoint_every,
                )
            except Exception as exc:
                bar.close()
                raise _failure(exc, args) from None
        bar.close()
    final = result["steps_this_run"] > 0 or saved is None
    if final:
        write_state(bool(result["cancelled"]))  # every rank takes part, rank 0 writes
    if not writer:
        return EXIT_INTERRUPTED if result["cancelled"] else 0
    saved_plot = None
    if final and result["losses"]:
        from quivers.commands.plots import loss_plot

        loss_plot(plot, result["losses"], f"{result['target']} ({Path(args.file).name}): SVI")
        saved_plot = plot
    if args.format == "json":
        out = {k: v for k, v in result.items() if k != "state"}  # plain numbers and text
        out.update(plot=str(saved_plot) if saved_plot else None, state_file=str(state_path))
        print(json.dumps(out, indent=2))
    else:
        print(summary(result, args, opts, saved_plot, state_path, world))
    return EXIT_INTERRUPTED if result["cancelled"] else 0


def _failure(exc: BaseException, args: argparse.Namespace) -> CliError:
    from quivers.compiler import QvrCompileError
    from quivers.jobs.data import DataError
    from quivers.jobs.run import RunError

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, QvrCompileError):
        return CliError("\n".join(d.render(args.file) for d in exc.diagnostics), raw=True)
    if isinstance(exc, DataError):
        return run_failure(exc, None)
    if isinstance(exc, RunError):
        return CliError(str(exc).splitlines()[0])
    if isinstance(exc, FloatingPointError):
        return CliError(f"the fit diverged: {exc} (try a smaller --lr)")
    if isinstance(exc, ValueError):
        return CliError(f"cannot fit {args.file}: {str(exc).splitlines()[0]}")
    return CliError(f"the fit failed in the model: {type(exc).__name__}: {exc}")


def summary(
    result: dict[str, Any],
    args: argparse.Namespace,
    opts: dict[str, Any],
    plot: Path | None,
    state_path: Path,
    world: int,
) -> str:
    lines = [
        f"{result['target']}: SVI on a text corpus, {result['steps']}/{result['total_steps']} "
        f"steps of {opts['batch_size'] * world} rows x {opts['seq_len']} bytes "
        f"({opts['epochs']} epoch(s), Adam lr {args.lr}, {opts['guide']} guide"
        + (f", {world} workers" if world > 1 else "")
        + f") in {result['elapsed']:.1f} s"
    ]
    info = result["corpus"]
    lines.append(
        f"data: {info['path']} ({info['bytes']:,} bytes; {result['train_rows']:,} training "
        f"rows, {result['held_out_rows']:,} held out)"
    )
    if result["cancelled"]:
        lines.append(
            f"stopped by Ctrl-C after step {result['steps']}; the state below resumes it "
            f"(qvr fit {args.file} --data {args.data} --resume {state_path})"
        )
    held, base = result["held_out_bits_per_token"], result["unigram_bits_per_token"]
    if held is not None and base is not None:
        lines.append(
            f"held-out: {held:.3f} bits per byte (negative ELBO per next-byte target); "
            f"unigram baseline {base:.3f} bits per byte ({(held - base) / base * 100:+.1f}%)"
        )
    speed = result["tokens_per_s"]
    lines.append(
        f"speed: {speed or 0:,.0f} tokens/s (input bytes through the model); parameters: "
        f"model {result['model_parameters']:,}, guide {result['guide_parameters']:,}"
    )
    losses = result["losses"]
    if losses:
        tail = losses[-min(10, len(losses)) :]
        lines.append(
            f"loss (minibatch negative ELBO at data-set scale): {num(losses[0], 6)} -> "
            f"{num(sum(tail) / len(tail), 6)} (mean of the last {len(tail)} step(s))"
        )
    if plot:
        lines.append(f"plot: {plot}")
    lines.append(
        f"state: {state_path}  (text: qvr sample {args.file} --from {state_path} --prompt TEXT)"
    )
    return "\n".join(lines)
