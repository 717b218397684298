"""Inlay hints, code actions and code lenses."""

from __future__ import annotations

from dataclasses import dataclass

from quivers.analysis.document import Document
from quivers.core.diagnostics import Diagnostic, Range, TextEdit
from quivers.semantic import types as T
from quivers.syntax import ast


@dataclass(frozen=True, slots=True)
class InlayHint:
    line: int
    col: int
    label: str
    tooltip: str = ""


def inlay_hints(doc: Document, start_line: int = 0, end_line: int | None = None) -> list[InlayHint]:
    """Types of `let` bindings and of program variables written without annotation."""
    end = len(doc.lines) if end_line is None else end_line
    out: list[InlayHint] = []
    for loc in doc.located:
        unit, node, result = loc.unit, loc.unit.node, loc.result
        if unit.line < start_line or unit.line > end or result is None:
            continue
        if isinstance(node, ast.LetDecl) and result.symbol is not None:
            t = result.symbol.type
            if isinstance(t, T.Arrow) and not _unknown(t.dom) and not _unknown(t.cod):
                pos = unit.absolute(node.name.span)
                out.append(InlayHint(pos.end_line, pos.end_col, f": {t.show()}"))
        elif isinstance(node, ast.SampleStep | ast.LetStep) and not (
            isinstance(node, ast.SampleStep) and node.annotation is not None
        ):
            local = result.locals.get(node.var.text)
            if local is None or _unknown(local.type):
                continue
            # after the names: `(a, b)` of a tuple draw shows the whole draw's type
            pos = unit.absolute(
                node.var_span if isinstance(node, ast.SampleStep) else node.var.span
            )
            where = "global" if local.is_global else "per row"
            out.append(InlayHint(pos.end_line, pos.end_col, f": {T.show(local.type)}", where))
    return out


def _unknown(t: T.Type) -> bool:
    """Whether a type is (or holds) an unknown part: a hint would only show '?'."""
    if isinstance(t, T.Unknown):
        return True
    return isinstance(t, T.Product) and any(_unknown(f) for f in t.factors)


@dataclass(frozen=True, slots=True)
class CodeAction:
    title: str
    edits: tuple[TextEdit, ...]
    diagnostic: Diagnostic | None = None
    preferred: bool = False


def code_actions(doc: Document, rng: Range) -> list[CodeAction]:
    """Quick fixes of the diagnostics that touch ``rng`` (did-you-mean, declare object)."""
    out: list[CodeAction] = []
    for diag in doc.analysis.diagnostics:
        if not diag.fix or not _overlaps(diag.range, rng):
            continue
        title = diag.fix_title or "Apply fix"
        out.append(CodeAction(title, diag.fix, diag, preferred=title.startswith("Replace")))
    return out


def _overlaps(a: Range, b: Range) -> bool:
    return (a.line, a.col) <= (b.end_line, b.end_col) and (b.line, b.col) <= (a.end_line, a.end_col)


@dataclass(frozen=True, slots=True)
class CodeLens:
    range: Range
    title: str
    command: str
    target: str


LENS_COMMANDS = (
    ("Sample", "qvr.client.sample"),
    ("Fit", "qvr.client.fitSvi"),
    ("Run NUTS", "qvr.client.runNuts"),
    ("Flowchart", "qvr.client.showFlowchart"),
)


def code_lenses(doc: Document) -> list[CodeLens]:
    out: list[CodeLens] = []
    for item in doc.file.items:
        unit = item.header if isinstance(item, ast.Program) else item
        node = unit.node
        target: str | None = None
        if isinstance(node, ast.ProgramHeader) and not node.name.missing:
            target = node.name.text
        elif isinstance(node, ast.ExportDecl) and isinstance(node.expr, ast.Ref):
            target = node.expr.name.text
        if target is None:
            continue
        rng = unit.absolute(node.span)
        head = Range(rng.line, 0, rng.line, 0, unit.offset, unit.offset)
        out.extend(CodeLens(head, title, cmd, target) for title, cmd in LENS_COMMANDS)
    return out
