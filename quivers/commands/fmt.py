"""``qvr fmt FILE... [--check]``: rewrite files in the canonical layout.

Formatting is idempotent and keeps every comment (``quivers.syntax.formatter``). A
file with syntax errors is never rewritten: it is reported with its first syntax
error and the command exits 1. With ``--check`` nothing is written; the files that
would change are listed and the exit code is 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quivers.commands import CliError, read_source

_SYNTAX_CODES = {"E0001", "E0002", "E0003", "E0004"}


def _syntax_error(path: str, text: str) -> str:
    from quivers.syntax.parser import parse

    diags = [d for d in parse(text).diagnostics if d.code in _SYNTAX_CODES]
    first = diags[0].render(path) if diags else f"{path}: error: syntax errors"
    more = f" (and {len(diags) - 1} more)" if len(diags) > 1 else ""
    return f"{first}{more}; not formatted: fix the syntax first"


def run(args: argparse.Namespace) -> int:
    from quivers.syntax.formatter import format_source

    changed: list[str] = []
    failed = 0
    for path in args.files:
        try:
            text = read_source(path)
        except CliError as exc:
            print(str(exc), file=sys.stderr)
            failed += 1
            continue
        formatted = format_source(text)
        if formatted is None:
            print(_syntax_error(path, text), file=sys.stderr)
            failed += 1
            continue
        if formatted == text:
            continue
        changed.append(path)
        if args.check:
            print(f"would reformat {path}")
            continue
        try:
            Path(path).write_text(formatted, encoding="utf-8")
        except OSError as exc:
            print(f"{path}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"reformatted {path}")
    total = len(args.files)
    unchanged = total - len(changed) - failed
    verb = "would be reformatted" if args.check else "reformatted"
    summary = f"{len(changed)} file(s) {verb}, {unchanged} unchanged"
    if failed:
        summary += f", {failed} not formatted"
    print(summary, file=sys.stderr)
    if failed:
        return 1
    return 1 if args.check and changed else 0
