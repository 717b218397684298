"""``qvr sample FILE``: draw from a program and print a summary of every site.

Without ``--from`` the weights are a seeded draw and the inputs random prompts, as
on the reference page's data-generation snippet; ``--from state.pt`` uses the
weights of a fit instead; ``--data`` takes the inputs (and host data) from a file.
``--out`` writes the input and every site's value (``.pt``, ``.npz`` or ``.json``);
such a file is valid ``--data`` for ``qvr fit``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
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

DATA_SUFFIXES = (".pt", ".npz", ".json")


def run(args: argparse.Namespace) -> int:

    args.n_given = getattr(args, "n_given", False)
    text = read_source(args.file)
    require_valid(text, args.file)
    if args.out and Path(args.out).suffix.lower() not in DATA_SUFFIXES:
        raise CliError(f"{args.out}: unsupported output type (use .pt, .npz or .json)")
    opts = run_options(args, "sample")

    from quivers.commands.state import load_state
    from quivers.jobs.run import run_sample

    saved = load_state(args.from_state) if args.from_state else None
    if args.prompt is not None:
        return _generate(args, text, saved)
    if saved and not args.target:
        opts = replace(opts, target=saved.get("target"))
    try:
        with torch_threads(args.threads):
            result = run_sample(
                text, args.file, opts, model_state=saved["state_dict"] if saved else None
            )
    except CliError:
        raise
    except Exception as exc:
        raise _failure(exc, args, saved) from None
    if args.out:
        _write(args.out, result.draws or {})
    if args.format == "json":
        out = result.to_wire()
        out["out"] = args.out
        print(json.dumps(out, indent=2))
    else:
        print(_summary(result, args, saved))
    return 0


def _generate(args: argparse.Namespace, text: str, saved: dict | None) -> int:
    """``--prompt TEXT``: bytes drawn one at a time after the prompt (a token model)."""
    import torch

    from quivers.jobs.corpus import generate, token_site
    from quivers.jobs.data import DataError
    from quivers.jobs.run import compile_target, load_state

    if args.tokens < 0:
        raise CliError("--tokens must be at least 0")
    if args.out or args.data:
        raise CliError("--prompt prints text; it takes no --out or --data")
    corpus = (saved or {}).get("corpus") or {}
    window = int(corpus.get("seq_len") or args.length)
    try:
        with torch_threads(args.threads):
            torch.manual_seed(args.seed)
            target = args.target or (saved.get("target") if saved else None)
            _, model, name = compile_target(text, args.file, target)
            token_site(model, name)
            if saved is not None:
                load_state(model, saved["state_dict"])
            torch.manual_seed(args.seed)
            prompt = args.prompt.encode("utf-8")
            texts = generate(model, prompt, args.tokens, window, rows=args.n if args.n_given else 1)
    except (CliError, DataError) as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:
        raise _failure(exc, args, saved) from None
    for i, drawn in enumerate(texts):
        if i:
            print("\n" + "-" * 40)
        sys.stdout.write((prompt + drawn).decode("utf-8", errors="replace") + "\n")
    how = f"weights of {args.from_state}" if saved else f"weights drawn under seed {args.seed}"
    print(
        f"{name}: {args.tokens} byte(s) after a {len(prompt)}-byte prompt, each given the last "
        f"{window} bytes, with the {how}",
        file=sys.stderr,
    )
    return 0


def _failure(exc: BaseException, args: argparse.Namespace, saved: dict | None) -> CliError:
    from quivers.compiler import QvrCompileError
    from quivers.jobs.data import DataError
    from quivers.jobs.run import RunError
    from quivers.runtime.errors import QvrDataError

    if isinstance(exc, QvrCompileError):
        return CliError("\n".join(d.render(args.file) for d in exc.diagnostics), raw=True)
    if isinstance(exc, DataError | QvrDataError):
        return run_failure(exc, args.data)
    if isinstance(exc, RunError) and saved and not args.target and "no program named" in str(exc):
        return CliError(
            f"{args.from_state}: fitted for '{saved.get('target')}' ({saved.get('source')}), "
            f"but {args.file} has no program of that name"
        )
    if isinstance(exc, RunError):
        where = args.from_state or args.file
        message = str(exc)
        return CliError(message if where in message else f"{where}: {message}")
    return CliError(f"sampling failed in the model: {type(exc).__name__}: {exc}")


def _write(path: str, draws: dict[str, Any]) -> None:
    import torch

    from quivers.jobs.data import DataError, save_file

    tensors = {k: v.detach() for k, v in draws.items() if isinstance(v, torch.Tensor)}
    try:
        save_file(path, tensors)
    except DataError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _summary(result: RunResult, args: argparse.Namespace, saved: dict | None) -> str:
    draws = result.draws or {}
    n = draws["x"].shape[0] if "x" in draws else args.n
    if saved:
        method = saved.get("method", "?")
        unit = "draws per chain, posterior mean" if method == "nuts" else "steps"
        how = (
            f"with the fitted weights of {args.from_state} "
            f"({method}, {saved.get('steps_done', '?')} {unit})"
        )
    else:
        how = f"with weights drawn under seed {args.seed}"
    source = f"inputs from {args.data}" if args.data else "random prompts"
    lines = [f"{result.target}: {n} draw(s) on {source}, {how}"]
    lines.append(f"data: {result.data or '-'}")
    observed = set(result.observed or ())
    rows = []
    for name, stats in (result.samples or {}).items():
        if "parts" in stats:
            rows.append([name, "latent", "(composite)", "-", "-", "-", "-", "-"])
            continue
        kind = "observed" if name in observed else "latent"
        rows.append(
            [
                name,
                kind,
                shape(stats.get("shape")),
                str(stats.get("dtype", "-")),
                num(stats.get("mean")),
                num(stats.get("sd")),
                num(stats.get("min")),
                num(stats.get("max")),
            ]
        )
    lines.append(table(["site", "kind", "shape", "dtype", "mean", "sd", "min", "max"], rows))
    ret = result.returned or {}
    if "shape" in ret:
        lines.append(
            f"returned: {shape(ret['shape'])} {ret.get('dtype')}, "
            f"mean {num(ret.get('mean'))}, sd {num(ret.get('sd'))}"
        )
    if args.out:
        keys = ", ".join(k for k in draws)
        lines.append(f"wrote {args.out} ({keys})")
    print(f"sampled in {result.elapsed or 0:.2f} s", file=sys.stderr)
    return "\n".join(lines)
