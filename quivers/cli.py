"""The ``qvr`` command line.

Each subcommand lives in its own function; heavy imports (torch) happen inside the
subcommands that need them, so ``qvr check`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from quivers.core.diagnostics import Severity


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: error: cannot read file: {exc}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    from quivers.semantic import check_text

    errors = warnings = 0
    unreadable = False
    report: list[dict[str, object]] = []
    for path in args.files:
        text = _read(path)
        if text is None:
            unreadable = True
            continue
        analysis = check_text(text)
        for diag in analysis.diagnostics:
            if diag.severity == Severity.ERROR:
                errors += 1
            elif diag.severity == Severity.WARNING:
                warnings += 1
            if args.format == "json":
                report.append(diag.to_json(path))
            else:
                print(diag.render(path))
    if args.format == "json":
        summary = {"files": len(args.files), "errors": errors, "warnings": warnings}
        print(json.dumps({"diagnostics": report, "summary": summary}, indent=2))
    else:
        files = len(args.files)
        noun = "file" if files == 1 else "files"
        print(f"checked {files} {noun}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors or unreadable else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qvr", description="The QVR language tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="type-check .qvr files and print diagnostics")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(run=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
