"""``qvr check FILE...``: type-check and print diagnostics."""

from __future__ import annotations

import argparse
import json
import sys

from quivers.commands import CliError, read_source
from quivers.core.diagnostics import Severity


def run(args: argparse.Namespace) -> int:
    from quivers.semantic import check_text

    errors = warnings = 0
    unreadable = False
    report: list[dict[str, object]] = []
    for path in args.files:
        try:
            text = read_source(path)
        except CliError as exc:
            print(f"{exc}", file=sys.stderr)
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
