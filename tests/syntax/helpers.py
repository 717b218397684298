"""The one entry point the syntax tests use to reach the parser and the layout.

``units(text)`` gives the parsed units of a file, ``parse_one(text)`` the single node
of a one-unit file, and ``walk``/``check_spans`` check every node's span against the
text it covers (spans are relative to their unit; ``Unit.absolute`` places them).
"""

from __future__ import annotations

from quivers.core.diagnostics import Range
from quivers.core.vocabulary import SPACE_KINDS
from quivers.syntax import ast, layout, parse
from quivers.syntax.ast import walk
from quivers.syntax.parser import cache_stats

__all__ = [
    "ast",
    "cache_stats",
    "check_range",
    "check_spans",
    "codes",
    "layout",
    "parse",
    "parse_one",
    "units",
    "walk",
]


def units(text: str) -> list[ast.Unit]:
    return parse(text).units()


def parse_one(text: str) -> ast.Node:
    """The node of a text holding exactly one unit (a declaration, usually)."""
    found = units(text)
    assert len(found) == 1, f"expected one unit, got {[u.text for u in found]}"
    return found[0].node


def codes(text: str) -> list[tuple[str, int]]:
    """The syntax diagnostics of a file as (code, zero-based line)."""
    return [(d.code, d.range.line) for d in parse(text).diagnostics]


def check_range(text: str, line_starts: list[int], r: Range) -> None:
    """A range lies inside the document and its lines, columns and offsets agree."""
    lines = text.split("\n")
    assert 0 <= r.offset <= r.end_offset <= len(text), r
    assert 0 <= r.line <= r.end_line < len(lines), r
    assert 0 <= r.col <= len(lines[r.line]), r
    assert 0 <= r.end_col <= len(lines[r.end_line]), r
    assert line_starts[r.line] + r.col == r.offset, r
    assert line_starts[r.end_line] + r.end_col == r.end_offset, r


def check_spans(text: str) -> int:
    """Check every node of every unit of ``text``; return how many nodes were checked.

    Each node's absolute range must lie inside its unit and agree with itself; a
    name must cover exactly its text; a child must lie inside its parent.
    """
    file = parse(text)
    count = 0
    for unit in file.units():
        unit_end = unit.offset + len(unit.text)
        for node in walk(unit.node):
            if node.span == ast.NO_SPAN:
                continue  # a node inserted by error recovery has no extent
            r = unit.absolute(node.span)
            check_range(text, file.line_starts, r)
            assert unit.offset <= r.offset <= r.end_offset <= unit_end, (node, unit.text)
            covered = text[r.offset : r.end_offset]
            if isinstance(node, ast.Name) and not node.missing:
                assert covered == node.text, (node, r)
            if not unit.syntax_errors:
                _check_covered(node, covered)
            for child in ast.children(node):
                if child.span == ast.NO_SPAN or (isinstance(child, ast.Name) and child.missing):
                    continue
                c = unit.absolute(child.span)
                assert r.offset <= c.offset and c.end_offset <= r.end_offset, (node, child)
            count += 1
    return count


# What the text of a node (in a unit without syntax errors) starts with.
_LEADS: dict[type, tuple[str, ...]] = {
    ast.ObjectDecl: ("object",),
    ast.MorphismDecl: ("morphism",),
    ast.LetDecl: ("let", "define"),
    ast.ExportDecl: ("export",),
    ast.CompositionDecl: ("composition",),
    ast.ProgramHeader: ("program",),
    ast.SampleStep: ("sample", "observe"),
    ast.LetStep: ("let",),
    ast.ScoreStep: ("score",),
    ast.ReturnStep: ("return",),
    ast.Fan: ("fan",),
    ast.Repeat: ("repeat",),
    ast.Stack: ("stack",),
    ast.Scan: ("scan",),
    ast.IdentityExpr: ("identity",),
    ast.FinSetType: ("FinSet",),
    ast.SpaceType: tuple(SPACE_KINDS),
    ast.EnumType: ("{",),
    ast.MatrixLit: ("[",),
}


def _check_covered(node: ast.Node, covered: str) -> None:
    """The text a node covers is the text it was read from."""
    lead = _LEADS.get(type(node))
    if isinstance(node, ast.FinSetType) and node.bare:  # `object T : 200` (E0203)
        assert covered == str(node.size), (node, covered)
    elif lead is not None:
        assert covered.startswith(lead), (type(node).__name__, covered)
    if isinstance(node, ast.NumberLit):
        assert covered.replace(" ", "") == node.text, (node, covered)
    if isinstance(node, ast.EnumType):
        assert covered.endswith("}"), covered
    if isinstance(node, ast.Fan | ast.Repeat | ast.Stack | ast.Scan | ast.IdentityExpr | ast.Apply):
        assert covered.endswith(")"), covered
    if isinstance(node, ast.Call):
        assert covered.startswith(node.fn.text) and covered.endswith(")"), covered
