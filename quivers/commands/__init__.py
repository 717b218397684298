"""Implementations of the ``qvr`` subcommands, one small module each.

``quivers.cli`` builds the argument parser and imports a subcommand's module only
when it runs, so ``qvr check`` and ``qvr fmt`` never import torch or matplotlib.
Every module exposes ``run(args) -> int`` (the exit code). A problem the user can fix
raises :class:`CliError`; ``quivers.cli.main`` prints it as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quivers.jobs.protocol import RunKind, RunOptions


class CliError(Exception):
    """A user-facing failure: printed as ``qvr <command>: error: <message>``, exit 1.

    With ``raw`` the message is printed as it is (diagnostics already in the
    ``file:line:col: error[code]: message`` form).
    """

    def __init__(self, message: str, code: int = 1, raw: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.raw = raw


def read_source(path: str) -> str:
    """The text of a ``.qvr`` file, or a CliError saying why it cannot be read."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{path}: is a directory, expected a .qvr file")
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read file: {exc.strerror or exc}") from None


def require_valid(text: str, path: str) -> None:
    """Raise a raw CliError listing the program's errors (checker only: no torch)."""
    from quivers.core.diagnostics import Severity
    from quivers.semantic import check_text

    errors = [d for d in check_text(text).diagnostics if d.severity == Severity.ERROR]
    if errors:
        raise CliError("\n".join(d.render(path) for d in errors), raw=True)


def run_failure(exc: BaseException, data: str | None = None) -> CliError:
    """A CliError for a failure raised by a run (bad data, bad state, a model error)."""
    message = str(exc) or type(exc).__name__
    if data and not message.startswith(data):
        message = f"{data}: {message}"
    return CliError(message.splitlines()[0] if message else message)


def run_options(args: argparse.Namespace, kind: RunKind) -> RunOptions:
    """The run options of ``qvr sample``/``qvr fit`` from their flags, validated by the
    run contract; a bad value is an error naming the flag."""
    from quivers.jobs.protocol import OptionError, RunOptions, keys_of

    raw = {key: getattr(args, key) for key in keys_of(kind)}
    try:
        return RunOptions.parse(raw, kind)[0]
    except OptionError as exc:
        raise CliError(f"--{exc.key.replace('_', '-')} {exc.reason}") from None


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` torch CPU threads, restoring the previous number after."""
    import torch

    if count < 1:
        raise CliError("--threads must be at least 1")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
