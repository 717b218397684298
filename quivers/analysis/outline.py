"""Document symbols (programs nest their steps), workspace symbols and folding."""

from __future__ import annotations

from dataclasses import dataclass, field

from quivers.analysis import deduction
from quivers.analysis.describe import symbol_signature
from quivers.analysis.document import Document
from quivers.core.diagnostics import Range
from quivers.semantic import types as T
from quivers.syntax import ast


@dataclass(slots=True)
class OutlineSymbol:
    name: str
    kind: str  # object | morphism | let | program | export | composition | step kinds
    detail: str
    range: Range
    selection: Range
    children: list[OutlineSymbol] = field(default_factory=list)


def document_symbols(doc: Document) -> list[OutlineSymbol]:
    out: list[OutlineSymbol] = []
    for item in doc.file.items:
        if isinstance(item, ast.Program):
            head = _unit_symbol(doc, item.header)
            if head is None:
                continue
            head.range = _span_range(item.header, item.steps[-1] if item.steps else item.header)
            result = doc.result_of(item)
            # a marginalize block nests its body: (depth, the symbol children go to)
            parents: list[tuple[int, OutlineSymbol]] = [(-1, head)]
            for index, step in enumerate(item.steps):
                while parents[-1][0] >= step.depth:
                    parents.pop()
                child = _named(_step_symbol(step, result.locals if result else {}))
                if child is None:
                    continue
                parents[-1][1].children.append(child)
                if isinstance(step.node, ast.MarginalizeStep):
                    body = item.body_of(index)
                    if body:
                        child.range = _span_range(step, body[-1])
                    parents.append((step.depth, child))
            out.append(head)
        else:
            sym = _unit_symbol(doc, item)
            if sym is not None:
                if isinstance(item.node, ast.DeductionDecl):
                    sym.children = _deduction_children(item, item.node)
                out.append(sym)
    return out


def _deduction_children(unit: ast.Unit, node: ast.DeductionDecl) -> list[OutlineSymbol]:
    out = []
    for r in deduction.rules(node):
        if r.name.text:
            out.append(
                OutlineSymbol(
                    r.name.text,
                    "rule",
                    deduction.rule_text(r).split(" : ", 1)[1],
                    unit.absolute(r.span),
                    unit.absolute(r.name.span),
                )
            )
    for e in deduction.entries(node):
        out.append(
            OutlineSymbol(
                f'"{e.word.text}"',
                "entry",
                deduction.show_term(e.category),
                unit.absolute(e.span),
                unit.absolute(e.word.span),
            )
        )
    return out


def _span_range(first: ast.Unit, last: ast.Unit) -> Range:
    a = first.absolute(first.node.span)
    b = last.absolute(last.node.span)
    return Range(a.line, a.col, b.end_line, b.end_col, a.offset, b.end_offset)


def _unit_symbol(doc: Document, unit: ast.Unit) -> OutlineSymbol | None:
    return _named(_unit_symbol_of(doc, unit))


def _named(sym: OutlineSymbol | None) -> OutlineSymbol | None:
    """LSP clients reject symbols with a blank name (VS Code throws): a statement
    too broken to have a name (a bare `export`, a step without its variable) has none."""
    return sym if sym is not None and sym.name.strip() else None


def _unit_symbol_of(doc: Document, unit: ast.Unit) -> OutlineSymbol | None:
    node = unit.node
    rng = unit.absolute(node.span)
    if isinstance(node, ast.ErrorNode):
        if node.name is None or node.keyword is None:
            return None
        return OutlineSymbol(
            node.name.text, node.keyword, "(does not parse)", rng, unit.absolute(node.name.span)
        )
    if isinstance(node, ast.ExportDecl):
        text = doc.text[rng.offset : rng.end_offset]
        return OutlineSymbol(text.removeprefix("export").strip(), "export", "export", rng, rng)
    if isinstance(node, ast.CompositionDecl):
        if node.label is not None:  # `composition ppca as real`
            detail = f"{node.algebra.text} algebra"
            return OutlineSymbol(
                node.label.text, "composition", detail, rng, unit.absolute(node.label.span)
            )
        return OutlineSymbol(
            node.algebra.text, "composition", "algebra", rng, unit.absolute(node.algebra.span)
        )
    name = getattr(node, "name", None)
    if not isinstance(name, ast.Name) or name.missing:
        return None
    symbol = doc.symbols.get(name.text)
    detail = symbol_signature(symbol) if symbol is not None and symbol.unit is unit else ""
    kind = {
        ast.ObjectDecl: "object",
        ast.MorphismDecl: "morphism",
        ast.LetDecl: "let",
        ast.ProgramHeader: "program",
        ast.DeductionDecl: "deduction",
    }.get(type(node), "object")
    return OutlineSymbol(name.text, kind, detail, rng, unit.absolute(name.span))


def _step_symbol(unit: ast.Unit, locals_: dict) -> OutlineSymbol | None:
    node = unit.node
    rng = unit.absolute(node.span)
    if isinstance(node, ast.SampleStep | ast.LetStep | ast.ScoreStep):
        kind = (
            ("observe" if node.observed else "sample")
            if isinstance(node, ast.SampleStep)
            else ("let" if isinstance(node, ast.LetStep) else "score")
        )
        local = locals_.get(node.var.text)
        detail = f"{kind} : {T.show(local.type)}" if local is not None else kind
        if isinstance(node, ast.SampleStep) and node.parts:  # `sample (a, b) <- ...`
            shown = "(" + ", ".join(p.text for p in node.parts) + ")"
            return OutlineSymbol(shown, kind, detail, rng, unit.absolute(node.var_span))
        return OutlineSymbol(node.var.text, kind, detail, rng, unit.absolute(node.var.span))
    if isinstance(node, ast.MarginalizeStep):
        local = locals_.get(node.var.text)
        shown = T.show(local.type) if local is not None else "?"
        detail = f"marginalize : {shown} (summed out)"
        return OutlineSymbol(
            node.var.text, "marginalize", detail, rng, unit.absolute(node.var.span)
        )
    if isinstance(node, ast.ReturnStep):
        names = ", ".join(n.text for n in node.vars)
        return OutlineSymbol(f"return {names}", "return", "", rng, rng)
    return None


def workspace_symbols(docs: list[Document], query: str) -> list[tuple[str, OutlineSymbol]]:
    """(uri, symbol) for every top-level symbol whose name contains ``query``
    (case-insensitive subsequence match, as editors expect)."""
    q = query.lower()
    out: list[tuple[str, OutlineSymbol]] = []
    for doc in docs:
        for sym in document_symbols(doc):
            if matches(sym.name.lower(), q):
                out.append((doc.uri, sym))
    return out


def matches(name: str, query: str) -> bool:
    """Whether ``query`` is a subsequence of ``name`` (both lowercased by the caller)."""
    it = iter(name)
    return all(ch in it for ch in query)


def folding_ranges(doc: Document) -> list[tuple[int, int, str]]:
    """(start line, end line, kind): programs, multi-line statements, comment blocks."""
    out: list[tuple[int, int, str]] = []
    for item in doc.file.items:
        if isinstance(item, ast.Program):
            last = item.steps[-1] if item.steps else item.header
            if last.end_line > item.header.line:
                out.append((item.header.line, last.end_line, "region"))
            for index, step in enumerate(item.steps):
                body = item.body_of(index) if isinstance(step.node, ast.MarginalizeStep) else []
                if body:
                    out.append((step.line, body[-1].end_line, "region"))
        elif item.end_line > item.line:
            out.append((item.line, item.end_line, "region"))
    run_start = run_end = None
    for c in doc.file.comments:
        if c.kind == "block":
            end = c.line + doc.text.count("\n", c.offset, c.end_offset)
            if end > c.line:
                out.append((c.line, end, "comment"))
            continue
        if run_end is not None and c.line == run_end + 1 and c.col == 0:
            run_end = c.line
            continue
        if run_start is not None and run_end is not None and run_end > run_start:
            out.append((run_start, run_end, "comment"))
        run_start = run_end = c.line if c.col == 0 else None
    if run_start is not None and run_end is not None and run_end > run_start:
        out.append((run_start, run_end, "comment"))
    return sorted(out)
