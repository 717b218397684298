"""A corpus fit as a run: what ``qvr.fitSvi`` does when ``data`` is a text corpus.

The fit of ``qvr fit FILE --data corpus.txt`` (:mod:`quivers.jobs.corpus`), driven
by run options (``seq_len``, ``batch_size``, ``epochs``, ``val_fraction``, ``guide``,
``clip_norm``, ``eval_every``, ``device``) and reporting, in every progress message,
tokens per second and (once the held-out rows have been scored) held-out bits per
token. Its checkpoint (``state``; default ``<program stem>.state.pt`` next to the
program, ``<program stem>.<target>.state.pt`` when a target is given) is written every ``checkpoint_every`` steps, at the end, and when the run
is stopped: a stopped run returns ``cancelled`` with the checkpoint's path in
``checkpoint``, and ``resume`` continues it (to the weights an uninterrupted fit
ends with).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path

from quivers.jobs.protocol import RunOptions, RunResult, output_stem

Progress = Callable[[float, str], None]
ShouldStop = Callable[[], bool]


def checkpoint_path(path: str, opts: RunOptions) -> Path:
    """Where the fit's checkpoint goes: ``state``, else next to the program."""
    if opts.state:
        return Path(opts.state)
    return Path(path).with_name(f"{output_stem(path, opts.target)}.state.pt")


def run_corpus_fit(
    text: str,
    path: str,
    opts: RunOptions,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    given: Collection[str] = (),
) -> RunResult:
    """Fit to the corpus ``opts.data`` until the last epoch or a stop.

    ``given``: the option keys the client set (a resumed fit takes the others from
    its checkpoint, and refuses a given one that contradicts it).
    """
    from quivers.jobs.corpus import (
        OPTIONS,
        check_resume,
        corpus_device,
        resumed_options,
        run_corpus,
        save_checkpoint,
        setup_from_options,
    )
    from quivers.jobs.run import RunError
    from quivers.jobs.state import StateError, read_state

    assert opts.data is not None, "a corpus fit needs a text corpus as data"
    start = time.perf_counter()
    device = corpus_device(opts.device)
    target = checkpoint_path(path, opts)
    try:
        saved = read_state(opts.resume) if opts.resume else None
    except StateError as exc:
        raise RunError(str(exc)) from None
    chosen = resumed_options({k: getattr(opts, k) for k in OPTIONS}, given, saved, str(opts.resume))
    setup = setup_from_options(
        text,
        path,
        opts.data,
        chosen,
        target=opts.target,
        lr=opts.lr,
        eval_every=opts.eval_every,
        device=device,
    )
    if saved is not None:
        check_resume(saved, setup, str(opts.resume))
    if progress:
        resumed = f"; resuming at step {setup.fit.state.step}" if saved else ""
        progress(
            setup.fit.state.step / max(setup.fit.steps_per_epoch() * setup.fit.epochs, 1),
            f"data: {Path(opts.data).name} ({setup.info['bytes']:,} bytes; "
            f"{setup.train_rows:,} training rows of {chosen['seq_len']} bytes, "
            f"{setup.held_out_rows:,} held out; {device.type}){resumed}",
        )

    def write(cancelled: bool = False) -> None:
        try:
            save_checkpoint(
                target,
                setup,
                source=path,
                seed=chosen["seed"],
                options={**chosen, "lr": opts.lr},
                cancelled=cancelled,
            )
        except StateError as exc:
            raise RunError(str(exc)) from None

    out = run_corpus(setup, progress, should_stop, write, opts.checkpoint_every)
    wrote = out["steps_this_run"] > 0 or saved is None
    if wrote:
        write(bool(out["cancelled"]))
    figures = {
        k: out[k]
        for k in (
            "steps",
            "total_steps",
            "epochs_done",
            "tokens_per_s",
            "held_out_bits_per_token",
            "unigram_bits_per_token",
            "held_out_bits",
            "train_rows",
            "held_out_rows",
            "guide_parameters",
            "model_parameters",
        )
    }
    return RunResult(
        "svi",
        setup.name,
        cancelled=bool(out["cancelled"]),
        elapsed=round(time.perf_counter() - start, 3),
        data=f"{opts.data} (text corpus)",
        losses=out["losses"],
        corpus={
            **figures,
            "path": setup.info["path"],
            "bytes": setup.info["bytes"],
            "seq_len": chosen["seq_len"],
            "batch_size": chosen["batch_size"],
            "epochs": chosen["epochs"],
            "guide": chosen["guide"],
            "device": str(device),
            "resumed_from": str(opts.resume) if saved is not None else None,
        },
        checkpoint=str(target) if wrote else str(opts.resume),
        state=out["state"],
    )
