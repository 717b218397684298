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

from quivers.commands import CliError, run_failure, torch_threads
from quivers.commands.report import num

EXIT_INTERRUPTED = 130
#: Adam's default step for corpus fits: at 0.005 the reference program's fit on the
#: standard library's sources reached 3.2 bits per byte in two epochs and then
#: fell back to the unigram baseline's 4.6 and beyond; at 0.002 it kept improving
#: (docs/examples/vanilla_rnn_lm.md)
CORPUS_LR = 0.002

#: the corpus options, their defaults, and the ones a resumed fit takes from its checkpoint
DEFAULTS: dict[str, Any] = {
    "seq_len": 16,
    "batch_size": 128,
    "epochs": 1,
    "val_fraction": 0.1,
    "guide": "prior",
    "seed": 0,
    "clip_norm": 5.0,
}
FROM_CHECKPOINT = ("seq_len", "batch_size", "val_fraction", "guide", "seed", "clip_norm")
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


def reject_corpus_options(args: argparse.Namespace) -> None:
    """Corpus options without a text corpus are a usage mistake: say so."""
    given = [o for o in CORPUS_ONLY if getattr(args, o, None) is not None]
    if args.distributed:
        given.append("distributed")
    if given:
        flags = ", ".join("--" + o.replace("_", "-") for o in given)
        raise CliError(f"{flags}: only for a text corpus (--data FILE.txt with --method svi)")


def _options(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    opts = {k: getattr(args, k) for k in DEFAULTS}
    if not getattr(args, "seed_given", False):
        opts["seed"] = None  # the checkpoint's, or the corpus default
    stored = (saved or {}).get("options") or {}
    for key in DEFAULTS:
        if saved is not None and key in FROM_CHECKPOINT and key in stored:
            if opts[key] is not None and opts[key] != stored[key]:
                flag = "--" + key.replace("_", "-")
                raise CliError(
                    f"{args.resume}: the checkpoint was fitted with {flag} {stored[key]}, "
                    f"not {opts[key]} (leave {flag} out to continue it)"
                )
            opts[key] = stored[key]
        elif opts[key] is None:  # a resumed fit runs to its planned end by default
            opts[key] = stored.get(key, DEFAULTS[key]) if key == "epochs" else DEFAULTS[key]
    if opts["seq_len"] < 1 or opts["batch_size"] < 1 or opts["epochs"] < 1:
        raise CliError("--seq-len, --batch-size and --epochs must be at least 1")
    if opts["clip_norm"] < 0:
        raise CliError("--clip-norm must be >= 0 (0 turns clipping off)")
    if not 0.0 <= opts["val_fraction"] < 1.0:
        raise CliError("--val-fraction must be in [0, 1)")
    for key in ("checkpoint_every", "eval_every"):
        value = getattr(args, key)
        if value is not None and value < 1:
            raise CliError(f"--{key.replace('_', '-')} must be at least 1")
    if not getattr(args, "lr_given", False):
        args.lr = CORPUS_LR
    if not args.lr > 0:
        raise CliError("--lr must be positive")
    return opts


def run(args: argparse.Namespace, text: str, plot: Path, state_path: Path) -> int:
    from quivers.commands.state import load_state

    saved = load_state(args.resume) if args.resume else None
    opts = _options(args, saved)
    rank, world, reduce = 0, 1, None
    if args.distributed:
        from quivers.inference import distributed

        try:
            rank, world = distributed.init_from_env()
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
        reduce = distributed.average_gradients
    try:
        return _fit(args, text, plot, state_path, saved, opts, rank, world, reduce)
    finally:
        if args.distributed:
            from quivers.inference import distributed

            distributed.shutdown()


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
) -> int:
    import warnings

    from quivers.commands.progress import ProgressBar, StopOnInterrupt
    from quivers.commands.state import save_state
    from quivers.jobs.corpus import check_resume, run_corpus, setup_corpus_fit

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    with torch_threads(args.threads):
        try:
            setup = setup_corpus_fit(
                text,
                args.file,
                args.data,
                target=args.target,
                seed=opts["seed"],
                seq_len=opts["seq_len"],
                batch_size=opts["batch_size"],
                epochs=opts["epochs"],
                val_fraction=opts["val_fraction"],
                lr=args.lr,
                guide=opts["guide"],
                eval_every=args.eval_every,
                num_replicas=world,
                rank=rank,
                reduce=reduce,
                clip_norm=opts["clip_norm"] or None,
            )
            if saved is not None:
                check_resume(saved, setup, str(args.resume))
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
                save_state(
                    state_path,
                    {k: v.detach().clone() for k, v in setup.model.state_dict().items()},
                    source=str(args.file),
                    target=setup.name,
                    method="svi",
                    seed=opts["seed"],
                    steps_done=setup.fit.state.step,
                    cancelled=cancelled,
                    options={**opts, "lr": args.lr},
                    corpus=setup.info,
                    fit=setup.fit.state_dict(ranks),
                )

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
