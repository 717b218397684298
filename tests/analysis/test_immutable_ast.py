"""AST nodes are never mutated after parsing.

Parsed units are shared: the cache hands the same nodes to every later parse of the
same text, check results and semantic tokens are keyed by the nodes' identity, and
the language server answers queries on one document while the next is analysed. So
no consumer may assign a node's field (tests/conftest.py makes that raise in every
test) or change the lists inside nodes (checked here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from quivers.analysis import Document
from quivers.analysis.completion import complete, signature_help
from quivers.analysis.flowchart import flowchart, targets
from quivers.analysis.hints import code_actions, code_lenses, inlay_hints
from quivers.analysis.hover import hover
from quivers.analysis.navigation import definition, references
from quivers.analysis.outline import document_symbols, folding_ranges
from quivers.analysis.tokens import semantic_tokens
from quivers.syntax import ast
from quivers.syntax.cache import FrontendCache
from quivers.syntax.formatter import format_source

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[2] / "docs" / "examples" / "source").glob("*.qvr")
)
BROKEN = sorted((Path(__file__).resolve().parents[1] / "data" / "broken").glob("*.qvr"))


def test_assigning_a_field_after_parsing_raises():
    # tests/conftest.py makes every node refuse it, so any test that mutated a node
    # (in any layer) would fail.
    [unit] = Document("let g = f >> h\n").file.units()
    assert isinstance(unit.node, ast.LetDecl)
    with pytest.raises(AttributeError, match="never mutated"):
        unit.node.name = ast.Name(ast.NO_SPAN, "other")
    with pytest.raises(AttributeError, match="never mutated"):
        unit.node.expr.span = ast.NO_SPAN
    assert unit.node.name.text == "g"


def _snapshot(file: ast.SourceFile) -> list[tuple[object, ...]]:
    """Every node's identity, type and fields, with the contents of its lists."""
    out: list[tuple[object, ...]] = []
    for unit in file.units():
        for node in ast.walk(unit.node):
            fields = []
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if isinstance(value, list):
                    value = tuple(
                        tuple(map(id, v)) if isinstance(v, list) else id(v) for v in value
                    )
                elif isinstance(value, ast.Node):
                    value = id(value)
                fields.append((f.name, value))
            out.append((id(node), type(node).__name__, tuple(fields)))
    return out


@pytest.mark.parametrize("path", EXAMPLES + BROKEN[:12], ids=lambda p: p.name)
def test_no_editor_query_changes_the_tree(path: Path):
    text = path.read_text(encoding="utf-8")
    doc = Document(text, path.as_uri(), 1, FrontendCache())
    before = _snapshot(doc.file)
    semantic_tokens(doc)
    inlay_hints(doc)
    code_lenses(doc)
    document_symbols(doc)
    folding_ranges(doc)
    for target in targets(doc):
        flowchart(doc, target)
    for line, line_text in enumerate(doc.lines):
        for col in range(0, len(line_text) + 1, 3):
            hover(doc, line, col)
            definition(doc, line, col)
            references(doc, line, col)
            complete(doc, line, col)
            signature_help(doc, line, col)
    for d in doc.analysis.diagnostics:
        code_actions(doc, d.range)
    format_source(text)
    # A second document over the same cache shares the nodes and must not change them.
    Document(text + "\n", path.as_uri(), 2, doc.cache)
    assert _snapshot(doc.file) == before
