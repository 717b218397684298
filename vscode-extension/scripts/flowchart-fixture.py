"""Regenerates test/fixtures/reference-flowchart.json: the `qvr/flowchart` result for
the reference program, computed by the same analysis the language server answers from.

    python vscode-extension/scripts/flowchart-fixture.py > vscode-extension/test/fixtures/reference-flowchart.json
"""

import json
import pathlib

from quivers.analysis.document import Document
from quivers.analysis.flowchart import flowchart

root = pathlib.Path(__file__).resolve().parents[2]
text = (root / "docs/examples/source/vanilla_rnn_lm.qvr").read_text()
chart = flowchart(Document(text, "file:///vanilla_rnn_lm.qvr"))


def lsp_range(r):
    if r is None:
        return None
    return {
        "start": {"line": r.line, "character": r.col},
        "end": {"line": r.end_line, "character": r.end_col},
    }


print(
    json.dumps(
        {
            "target": chart.target,
            "mermaid": chart.mermaid,
            "nodes": [
                {"id": n.id, "label": n.label, "kind": n.kind, "range": lsp_range(n.range)}
                for n in chart.nodes
            ],
            "targets": chart.targets,
            "error": chart.error,
        },
        indent=2,
    )
)
