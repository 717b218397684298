"""``qvr graph FILE``: the flowchart of a program, as Mermaid text or an SVG picture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quivers.commands import CliError, read_source


def run(args: argparse.Namespace) -> int:
    from quivers.analysis.document import Document
    from quivers.analysis.flowchart import flowchart

    text = read_source(args.file)
    fmt = args.format
    if fmt is None:
        fmt = "svg" if args.out and args.out.lower().endswith(".svg") else "mermaid"
    chart = flowchart(Document(text, uri=args.file), args.target)
    if chart.error or chart.mermaid is None:
        reason = chart.error or "nothing to chart"
        if args.target and args.target not in chart.targets:
            known = ", ".join(chart.targets) or "none"
            reason = f"no program or export named '{args.target}' (targets: {known})"
        raise CliError(f"{args.file}: {reason}")
    if fmt == "svg":
        from quivers.commands.svg import render

        nodes = [(n.id, n.label, n.kind) for n in chart.nodes]
        output = render(nodes, chart.edges, title=chart.target or "")
    else:
        output = chart.mermaid
    if args.out:
        try:
            Path(args.out).write_text(output, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
        print(
            f"wrote {args.out} ({fmt}, {chart.target}: {len(chart.nodes)} nodes)", file=sys.stderr
        )
    else:
        sys.stdout.write(output)
    return 0
