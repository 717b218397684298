"""Fitting a token model to a text corpus, and generating text from a fit.

A corpus is a UTF-8 text file read as bytes (the reference program's ``Token :
FinSet 256``). It is cut into rows of ``seq_len`` bytes, each with the byte that
follows as its next-token target (row i is ``bytes[i L : (i+1) L]`` and target
``bytes[(i+1) L]``); a seeded ``val_fraction`` of the rows is held out. The fit is
minibatch SVI (:class:`~quivers.inference.minibatch.MinibatchFit`) with a guide
that does not grow with the corpus (:mod:`~quivers.inference.local_guides`), and
its figures are bits per target byte: the held-out negative ELBO per token, and a
unigram baseline (byte frequencies of the training text, add-one smoothed) scored
on the same held-out targets.

Checkpoints are the state file of ``qvr fit`` plus a ``fit`` entry (guide,
optimiser, data position, RNG state: :meth:`MinibatchFit.state_dict`) and a
``corpus`` entry (path, size, SHA-256, ``seq_len``) that a resumed fit checks.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from quivers.jobs.data import DataError, uses_sequences
from quivers.jobs.protocol import is_text_corpus

__all__ = ["is_text_corpus"]  # re-exported: where the CLI looks for it
GUIDES = ("prior", "amortized")
VOCAB = 256


def read_corpus(path: str | Path) -> bytes:
    """The bytes of a UTF-8 text file, or a DataError saying why it is not one."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"{p}: the corpus is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{p}: a binary file (a NUL byte at offset {nul}); a corpus is UTF-8 text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    return data


def byte_rows(
    data: bytes, seq_len: int, where: str = "corpus"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``seq_len`` bytes (R, L) and the byte after each (R,)."""
    if seq_len < 1:
        raise DataError("--seq-len must be at least 1")
    if len(data) < seq_len + 1:
        raise DataError(
            f"{where}: --seq-len {seq_len} is longer than the corpus ({len(data)} bytes); "
            f"a row needs {seq_len} bytes and the byte after them"
        )
    rows = (len(data) - 1) // seq_len
    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    x = flat[: rows * seq_len].reshape(rows, seq_len)
    y = flat[seq_len : rows * seq_len + 1 : seq_len]
    return x, y


def unigram_bits(train_text: torch.Tensor, targets: torch.Tensor) -> float:
    """Cross-entropy (bits per byte) of add-one-smoothed byte frequencies on ``targets``."""
    counts = torch.bincount(train_text.reshape(-1), minlength=VOCAB).double() + 1.0
    log_p = (counts / counts.sum()).log()
    return float(-log_p[targets].mean()) / math.log(2.0)


def corpus_device(name: str, distributed: bool = False) -> torch.device:
    """The device of a corpus fit (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``); a
    ``torchrun`` worker asked for ``cuda`` takes the GPU of its ``LOCAL_RANK``."""
    import os

    from quivers.jobs.run import resolve_device

    device = resolve_device(name)
    if distributed and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # nccl's collectives run on the current device
    return device


def corpus_info(path: str | Path, data: bytes, seq_len: int) -> dict[str, Any]:
    return {
        "path": str(path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "seq_len": int(seq_len),
    }


def token_site(model: nn.Module, name: str) -> str:
    """The observed next-token site of a token program, or a DataError saying why not."""
    from quivers.runtime.ir import FinSetT

    dom = getattr(getattr(model, "decl", None), "dom", None)
    observed = sorted(getattr(model, "observed_names", ()))
    fits = isinstance(dom, FinSetT) and dom.size == VOCAB and uses_sequences(model)
    if not fits or len(observed) != 1:
        raise DataError(
            f"'{name}' cannot be fitted to a text corpus: that needs a program from a "
            f"sequence of FinSet {VOCAB} (bytes) with one observed next-token site"
        )
    with torch.no_grad(), torch.random.fork_rng():
        trace = model.trace(torch.zeros(1, 2, dtype=torch.long))  # type: ignore[operator]
    support = trace[observed[0]].support
    upper = getattr(support, "upper_bound", None)
    if not getattr(support, "is_discrete", False) or upper is None or int(upper) != VOCAB - 1:
        raise DataError(
            f"'{name}': the observed site '{observed[0]}' is not a byte "
            f"(support {support}); a text corpus needs FinSet {VOCAB} targets"
        )
    return str(observed[0])


def make_guide(model: nn.Module, kind: str) -> nn.Module:
    from quivers.inference.local_guides import AmortizedGuide, PriorGuide

    if kind == "prior":
        return PriorGuide(model)
    if kind == "amortized":
        return AmortizedGuide(model, categories={"x": VOCAB})
    raise DataError(f"unknown guide '{kind}' (use {', '.join(GUIDES)})")


@dataclass
class CorpusSetup:
    """Everything a corpus fit needs, built the same way for a new or resumed fit."""

    model: nn.Module
    name: str
    guide: nn.Module
    fit: Any  # MinibatchFit
    info: dict[str, Any]
    unigram_bits: float | None
    train_rows: int
    held_out_rows: int


def setup_corpus_fit(
    text: str,
    path: str,
    data_path: str,
    *,
    target: str | None,
    seed: int,
    seq_len: int,
    batch_size: int,
    epochs: int,
    val_fraction: float,
    lr: float,
    guide: str,
    eval_every: int | None = None,
    num_replicas: int = 1,
    rank: int = 0,
    reduce: Any = None,
    clip_norm: float | None = None,
    device: torch.device | None = None,
) -> CorpusSetup:
    """Read the corpus, compile the program, split the rows and build the fit; with
    ``device`` the model (and then the guide) lives there and every batch is moved
    there as it is fetched (the rows stay in host memory)."""
    from quivers.inference import ELBO, SVI
    from quivers.inference.minibatch import MinibatchFit, RowDataset
    from quivers.jobs.run import compile_target

    data = read_corpus(data_path)
    x, y = byte_rows(data, seq_len, data_path)
    torch.manual_seed(seed)  # the weights' initialisation, as compiling draws it
    _, model, name = compile_target(text, path, target)
    site = token_site(model, name)
    if device is not None:
        model.to(device)
    rows = RowDataset(x, {site: y})
    if val_fraction > 0 and len(rows) < 2:
        raise DataError(
            f"{data_path}: {len(rows)} row(s) of {seq_len} bytes cannot be split into "
            "training and held-out rows (use a smaller --seq-len or --val-fraction 0)"
        )
    try:
        train, held = rows.split(val_fraction, seed)
    except ValueError as exc:
        raise DataError(f"{data_path}: {exc}") from None
    if batch_size < 1:
        raise DataError("--batch-size must be at least 1")
    g = make_guide(model, guide)
    optim = lambda ps: torch.optim.Adam(ps, lr=lr)  # noqa: E731 - the SVI factory
    svi = SVI(model, g, optim, ELBO())
    fit = MinibatchFit(
        svi,
        train,
        held if len(held) else None,
        batch_size=min(batch_size, len(train)),
        epochs=epochs,
        seed=seed,
        eval_every=eval_every,
        num_replicas=num_replicas,
        rank=rank,
        reduce=reduce,
        clip_norm=clip_norm,
        device=device,
    )
    fit.prepare()
    baseline = unigram_bits(train.x, held.observations[site]) if len(held) else None
    return CorpusSetup(
        model,
        name,
        g,
        fit,
        corpus_info(data_path, data, seq_len),
        baseline,
        len(train),
        len(held),
    )


def setup_from_options(
    text: str,
    path: str,
    data_path: str,
    options: dict[str, Any],
    *,
    target: str | None,
    lr: float,
    eval_every: int | None,
    device: torch.device | None,
    num_replicas: int = 1,
    rank: int = 0,
    reduce: Any = None,
) -> CorpusSetup:
    """:func:`setup_corpus_fit` from the fit's options (:data:`OPTIONS`, as
    :func:`resumed_options` gives them; a ``clip_norm`` of 0 turns clipping off)."""
    return setup_corpus_fit(
        text,
        path,
        data_path,
        target=target,
        seed=options["seed"],
        seq_len=options["seq_len"],
        batch_size=options["batch_size"],
        epochs=options["epochs"],
        val_fraction=options["val_fraction"],
        lr=lr,
        guide=options["guide"],
        eval_every=eval_every,
        num_replicas=num_replicas,
        rank=rank,
        reduce=reduce,
        clip_norm=options["clip_norm"] or None,
        device=device,
    )


#: the corpus options a fit keeps, and the ones a resumed fit takes from its checkpoint
OPTIONS = ("seq_len", "batch_size", "epochs", "val_fraction", "guide", "seed", "clip_norm")
FROM_CHECKPOINT = ("seq_len", "batch_size", "val_fraction", "guide", "seed", "clip_norm")


def resumed_options(
    opts: dict[str, Any],
    given: Collection[str],
    saved: dict[str, Any] | None,
    source: str,
    spell: Callable[[str], str] = str,
) -> dict[str, Any]:
    """The options of a fit resumed from ``saved``: the checkpoint's for the keys in
    :data:`FROM_CHECKPOINT` (a ``given`` one that contradicts it is a RunError, with
    the key as ``spell`` writes it: ``--seq-len`` on the command line), and its
    planned ``epochs`` unless more are given."""
    from quivers.jobs.run import RunError

    out = dict(opts)
    if saved is None:
        return out
    stored = saved.get("options") or {}
    for key in OPTIONS:
        if key in FROM_CHECKPOINT and key in stored:
            if key in given and out[key] != stored[key]:
                raise RunError(
                    f"{source}: the checkpoint was fitted with {spell(key)} {stored[key]}, "
                    f"not {out[key]} (leave {spell(key)} out to continue it)"
                )
            out[key] = stored[key]
        elif key == "epochs" and key not in given:  # runs to its planned end
            out[key] = stored.get(key, out[key])
    return out


def check_resume(
    saved: dict[str, Any], setup: CorpusSetup, source: str, spell: Callable[[str], str] = str
) -> None:
    """Refuse a checkpoint of another program or corpus (one line saying which)."""
    from quivers.jobs.run import RunError, load_state

    fit_state = saved.get("fit")
    if not isinstance(fit_state, dict):
        raise RunError(f"{source}: not a checkpoint of a corpus fit (no optimiser or data state)")
    if saved.get("target") != setup.name:
        raise RunError(
            f"{source}: a checkpoint of '{saved.get('target')}' ({saved.get('source')}), "
            f"not of '{setup.name}'"
        )
    try:
        load_state(cast(Any, setup.model), saved["state_dict"])  # names a mismatched weight
    except RunError as exc:
        raise RunError(f"{source}: {exc}") from None
    corpus = saved.get("corpus") or {}
    if (
        corpus.get("sha256") != setup.info["sha256"]
        or corpus.get("seq_len") != setup.info["seq_len"]
    ):
        raise RunError(
            f"{source}: fitted on {corpus.get('path')} ({corpus.get('bytes')} bytes, seq-len "
            f"{corpus.get('seq_len')}), not on this corpus with seq-len {setup.info['seq_len']}"
        )
    try:
        setup.fit.load_state_dict(fit_state)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise RunError(f"{source}: the checkpoint does not fit this run: {exc}") from None
    done = setup.fit.state.epoch
    if done >= setup.fit.epochs:
        raise RunError(
            f"{source}: the checkpoint has finished {done} epoch(s); ask for "
            f"{spell('epochs')} {done + 1} or more to fit further"
        )


def run_corpus(
    setup: CorpusSetup,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[], None] | None = None,
    checkpoint_every: int | None = None,
) -> dict[str, Any]:
    """Fit to the end (or until stopped); a JSON-ready result with the figures."""
    from quivers.inference import InferenceCancelled
    from quivers.inference.minibatch import bits

    start = time.perf_counter()
    fit = setup.fit
    steps_before = fit.state.step

    def report(info: Any) -> None:
        if progress is None:
            return
        s = info.stats
        msg = (
            f"epoch {min(int(s['epoch']) + 1, fit.epochs)}/{fit.epochs} · "
            f"step {info.iteration}/{info.total} · loss {s['loss']:.4g} · "
            f"{s['tokens_per_s']:,.0f} tok/s"
        )
        if "held_out" in s:
            msg += f" · held-out {bits(s['held_out']):.3f} bits/token"
        progress(info.iteration / max(info.total, 1), msg)

    cancelled = False
    try:
        fit.fit(report, should_stop, checkpoint, checkpoint_every)
    except InferenceCancelled:
        cancelled = True
    st = fit.state
    held = [(s, bits(v)) for s, v in st.held_out]
    return {
        "ok": True,
        "kind": "corpus",
        "target": setup.name,
        "cancelled": cancelled,
        "error": None,
        "elapsed": round(time.perf_counter() - start, 3),
        "steps": st.step,
        "steps_this_run": st.step - steps_before,
        "total_steps": fit.steps_per_epoch() * fit.epochs,
        "epochs_done": st.epoch,
        "losses": [round(v, 4) for v in st.losses],
        "held_out_bits": held,
        "held_out_bits_per_token": held[-1][1] if held else None,
        "unigram_bits_per_token": setup.unigram_bits,
        "tokens_per_s": st.tokens / st.seconds if st.seconds > 0 else None,
        "train_rows": setup.train_rows,
        "held_out_rows": setup.held_out_rows,
        "corpus": setup.info,
        "guide_parameters": sum(int(p.numel()) for p in setup.guide.parameters()),
        "model_parameters": sum(int(p.numel()) for p in setup.model.parameters()),
        "state": weights(setup),
    }


def weights(setup: CorpusSetup) -> dict[str, torch.Tensor]:
    """The model's weights, copied to host memory."""
    return {k: v.detach().to("cpu", copy=True) for k, v in setup.model.state_dict().items()}


def save_checkpoint(
    path: str | Path,
    setup: CorpusSetup,
    *,
    source: str,
    seed: int,
    options: dict[str, Any],
    cancelled: bool = False,
    rng_of_ranks: list[torch.Tensor] | None = None,
) -> None:
    """Write the fit's checkpoint atomically (:func:`quivers.jobs.state.write_state`):
    the weights, the fit's state (guide, optimiser, data position, RNG), the corpus
    and the options a resumed fit must keep."""
    from quivers.jobs.state import write_state

    write_state(
        path,
        weights(setup),
        source=source,
        target=setup.name,
        method="svi",
        seed=seed,
        steps_done=setup.fit.state.step,
        cancelled=cancelled,
        options=options,
        corpus=setup.info,
        fit=setup.fit.state_dict(rng_of_ranks),
    )


def generate(
    model: nn.Module, prompt: bytes, count: int, window: int, rows: int = 1
) -> list[bytes]:
    """``count`` bytes drawn after ``prompt``, each from the model given the last
    ``window`` bytes (the fit's sequence length), for ``rows`` independent rows."""
    if not prompt:
        raise DataError("--prompt needs at least one character")
    context = torch.tensor(list(prompt), dtype=torch.long).expand(rows, -1).clone()
    out: list[torch.Tensor] = []
    with torch.no_grad():
        for _ in range(count):
            nxt = model.rsample(context[:, -window:])  # type: ignore[operator]
            nxt = torch.as_tensor(nxt).reshape(rows, 1).long()
            out.append(nxt)
            context = torch.cat((context, nxt), dim=1)
    if not out:
        return [b"" for _ in range(rows)]
    drawn = torch.cat(out, dim=1)
    return [bytes(row.tolist()) for row in drawn]
