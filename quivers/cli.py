"""The ``qvr`` command line.

This module only builds the argument parser and dispatches: each subcommand lives in
its own module under ``quivers.commands`` and is imported when it runs, so heavy
imports (torch, matplotlib) happen only in ``sample`` and ``fit``, and ``qvr check``
and ``qvr fmt`` start fast.

Exit codes: 0 success; 1 errors in the program, the data or the files (one line per
problem on stderr, no traceback), ``qvr fmt --check`` finding files to reformat;
2 bad command-line usage; 130 interrupted by Ctrl-C (``qvr fit`` still saves).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from quivers.jobs.protocol import cli_default

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _RecordGiven(argparse.Action):
    """Store the value and set ``<dest>_given``: the parser's defaults are the run
    contract's, and a few commands read "not given" differently (``--n`` with
    ``--prompt`` is one text; a text-corpus fit has its own ``--lr``, and a resumed
    one takes its checkpoint's ``--seed``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


class _RecordGivenFlag(_RecordGiven):
    """An on/off flag (``--compile``) whose default is the run contract's (False)."""

    def __init__(self, option_strings, dest, **kwargs):  # noqa: D107
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        super().__call__(parser, namespace, True, option_string)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a .qvr program")
    p.add_argument("--target", metavar="NAME", help="program to run (default: the first export)")
    seed = cli_default("seed")
    p.add_argument(
        "--seed",
        type=int,
        default=seed,
        action=_RecordGiven,
        metavar="S",
        help=f"random seed ({seed})",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="inputs and observations: .pt (torch.save of a dict of tensors), .npz or .json "
        "with keys x, the observed sites and host data (default: synthetic from the model)",
    )
    p.add_argument(
        "--length",
        type=int,
        default=cli_default("length"),
        metavar="T",
        help=f"sequence length of synthetic prompts ({cli_default('length')})",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="summary format on stdout"
    )
    p.add_argument(
        "--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qvr",
        description="The QVR language tools: check, format, chart, sample and fit .qvr programs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="type-check .qvr files and print diagnostics")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text")

    fmt = sub.add_parser("fmt", help="format .qvr files in place (canonical layout)")
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 listing files that would change"
    )

    graph = sub.add_parser("graph", help="flowchart of a program (Mermaid or SVG)")
    graph.add_argument("file", metavar="FILE")
    graph.add_argument(
        "--format",
        choices=("mermaid", "svg"),
        help="output format (default: svg when --out ends in .svg, else mermaid)",
    )
    graph.add_argument("--target", metavar="NAME", help="program or export to chart")
    graph.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")

    sample = sub.add_parser("sample", help="draw from a program and summarise every site")
    _add_run_options(sample)
    sample.add_argument(
        "--n",
        type=int,
        metavar="N",
        default=cli_default("n"),
        action=_RecordGiven,
        help=f"number of draws (rows; {cli_default('n')}, or 1 text with --prompt)",
    )
    sample.add_argument(
        "--out", metavar="FILE", help="write x and every site's value (.pt, .npz or .json)"
    )
    sample.add_argument(
        "--prompt",
        metavar="TEXT",
        help="generate text after TEXT with a token model (bytes; use with --from)",
    )
    sample.add_argument(
        "--tokens", type=int, default=200, metavar="N", help="bytes to generate (200)"
    )
    sample.add_argument(
        "--from",
        dest="from_state",
        metavar="STATE",
        help="use the fitted weights of a state file written by `qvr fit`",
    )

    fit = sub.add_parser("fit", help="fit a program with SVI or NUTS; plot and save the state")
    _add_run_options(fit)
    fit.add_argument(
        "--method", choices=("svi", "nuts"), default="svi", help="inference method (svi)"
    )
    for flag, kind, metavar, help_text in (
        ("steps", int, "N", "SVI steps"),
        ("warmup", int, "N", "NUTS warmup"),
        ("samples", int, "N", "NUTS draws"),
        ("chains", int, "N", "NUTS chains"),
        ("step_size", float, "E", "NUTS initial step size"),
        ("max_tree_depth", int, "D", "NUTS tree depth"),
        ("batch", int, "N", "rows of the synthetic corpus"),
    ):
        default = cli_default(flag)
        fit.add_argument(
            f"--{flag.replace('_', '-')}",
            type=kind,
            default=default,
            metavar=metavar,
            help=f"{help_text} ({default})",
        )
    fit.add_argument(
        "--lr",
        type=float,
        default=cli_default("lr"),
        action=_RecordGiven,
        metavar="LR",
        help=f"SVI Adam learning rate ({cli_default('lr')}; 0.002 for a text corpus)",
    )
    fit.add_argument(
        "--chain-method",
        choices=("vectorized", "sequential", "parallel"),
        default=None,
        help="NUTS chains as one batch, one after another, or in worker processes "
        "(default: vectorized for several chains)",
    )
    fit.add_argument(
        "--device",
        default="cpu",
        metavar="DEV",
        help="torch device of the model and the fit: cpu, cuda, mps or auto (cpu)",
    )
    fit.add_argument(
        "--compile",
        default=cli_default("compile"),
        action=_RecordGivenFlag,
        help="NUTS: run the potential and its gradient through torch.compile (the first "
        "transitions compile, tens of seconds to a minute); the summary says whether it compiled or ran eagerly, and why",
    )
    fit.add_argument(
        "--save",
        metavar="RUN.nc",
        help="NUTS: write the draws and sampler statistics as an ArviZ InferenceData "
        "netCDF file (needs the arviz extra)",
    )
    fit.add_argument(
        "--plot",
        metavar="FILE",
        help="plot file (.png/.svg/.pdf; default: FILE's name with .loss.png or .nuts.png, "
        "after .NAME with --target NAME)",
    )
    fit.add_argument(
        "--state",
        metavar="FILE",
        help="fitted-state file (default: <FILE stem>.state.pt next to the plot; "
        "<FILE stem>.NAME.state.pt with --target NAME)",
    )
    corpus = fit.add_argument_group(
        "text corpora", "--data FILE.txt: UTF-8 text as byte sequences with next-byte targets"
    )
    for flag, kind, metavar, help_text in (
        ("seq_len", int, "L", "bytes per row of a text corpus"),
        ("batch_size", int, "B", "rows per minibatch"),
        ("epochs", int, "N", "passes over the corpus"),
        ("val_fraction", float, "F", "held-out share of the rows"),
        ("clip_norm", float, "C", "clip the gradient norm per row of the corpus at C; 0: off"),
        ("eval_every", int, "N", "score the held-out rows every N steps"),
        ("checkpoint_every", int, "N", "write the state file (a resumable checkpoint) every N steps"),
    ):  # fmt: skip
        default = cli_default(flag)
        corpus.add_argument(
            f"--{flag.replace('_', '-')}",
            type=kind,
            default=default,
            action=_RecordGiven,
            metavar=metavar,
            help=help_text + ("" if default is None else f" ({default})"),
        )
    corpus.add_argument(
        "--resume",
        metavar="STATE",
        action=_RecordGiven,
        help="continue the fit saved in STATE (a checkpoint)",
    )
    corpus.add_argument(
        "--guide",
        choices=("prior", "amortized"),
        default=cli_default("guide"),
        action=_RecordGiven,
        help="guide of the local sites: prior (draws from the model) or amortized "
        f"({cli_default('guide')})",
    )
    corpus.add_argument(
        "--distributed",
        action="store_true",
        help="one worker of a torchrun data-parallel fit (gloo on CPU); rank 0 writes",
    )
    fit.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="progress on stderr: a bar on a terminal, plain lines otherwise (auto)",
    )

    sub.add_parser("lsp", help="start the language server (LSP over stdio)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from quivers.commands import CliError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error; argparse has printed it
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    module = importlib.import_module(f"quivers.commands.{args.command}")
    try:
        return int(module.run(args))
    except CliError as exc:
        if exc.raw:
            print(str(exc), file=sys.stderr)
        else:
            print(f"qvr {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"\nqvr {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `qvr graph FILE | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
