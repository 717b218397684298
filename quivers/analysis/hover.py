"""Hover: the type of the name or expression under the cursor, with its doc comment."""

from __future__ import annotations

import re
from dataclasses import dataclass

from quivers.analysis import deduction
from quivers.analysis.describe import (
    family_markdown,
    local_markdown,
    marginal_markdown,
    symbol_markdown,
    word_markdown,
)
from quivers.analysis.document import Document, Located
from quivers.core.diagnostics import Range
from quivers.core.families import FAMILIES
from quivers.core.vocabulary import ALGEBRAS
from quivers.semantic import types as T
from quivers.syntax import ast

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Hover:
    markdown: str
    range: Range


def hover(doc: Document, line: int, col: int) -> Hover | None:
    found = doc.ref_at(line, col)
    if found is not None:
        ref = found.ref
        if ref.scope == "global":
            symbol = doc.symbols.get(ref.target)
            if symbol is not None:
                return Hover(symbol_markdown(symbol), found.range)
        elif found.where.result is not None:
            local = found.where.result.locals.get(ref.target)
            if local is not None and local.kind == "marginal":
                return Hover(_marginal_hover(found.where, local), found.range)
            if local is not None:
                scan = _bound_by_scan(doc, found.where, ref.target)
                return Hover(local_markdown(local, scan), found.range)
    return _hover_node(doc, line, col) or _hover_word(doc, line, col)


def _hover_node(doc: Document, line: int, col: int) -> Hover | None:
    nodes = doc.nodes_at(line, col)
    outer = nodes[0][0] if nodes else None
    if isinstance(outer, ast.DeductionDecl):
        return _hover_deduction(outer, nodes)
    if isinstance(outer, ast.CompositionDecl) and outer.label is not None:
        label = outer.label
        if any(node is label for node, _, _ in nodes):
            algebra = ALGEBRAS.get(outer.algebra.text)
            doc_ = f": {algebra.doc}" if algebra is not None else ""
            md = f"composition **{label.text}** under the **{outer.algebra.text}** algebra{doc_}"
            return Hover(md, nodes[0][2].unit.absolute(label.span))
    for node, rng, loc in reversed(nodes):  # innermost first
        if isinstance(node, ast.FamilyRef) or (
            isinstance(node, ast.Ref) and node.name.text in FAMILIES
        ):
            family = FAMILIES.get(node.name.text)
            if family is not None:
                return Hover(family_markdown(family), loc.unit.absolute(node.name.span))
        if loc.result is None:
            continue
        t = loc.result.types.get(id(node))
        if isinstance(t, T.Arrow) and isinstance(node, _EXPR_NODES):
            text = doc.text[rng.offset : rng.end_offset]
            md = f"```qvr\n{text} : {t.show()}\n```\n\n{T.describe(t.dom)} → {T.describe(t.cod)}"
            return Hover(md, rng)
    return None


def _hover_deduction(outer: ast.DeductionDecl, nodes: list) -> Hover | None:
    atoms = {n.text for p in outer.parts if isinstance(p, ast.AtomsPart) for n in p.names}
    name = outer.name.text
    words = {id(e.word) for e in deduction.entries(outer)}
    for node, rng, loc in reversed(nodes):  # innermost first
        if (
            isinstance(node, ast.Name)
            and node.text in atoms
            and node is not outer.name
            and id(node) not in words
        ):
            return Hover(deduction.atom_markdown(name, node.text), rng)
        if isinstance(node, ast.RulePart):
            return Hover(deduction.rule_markdown(name, node), loc.unit.absolute(node.name.span))
        if isinstance(node, ast.LexEntry):
            return Hover(deduction.entry_markdown(name, node), loc.unit.absolute(node.word.span))
    return None


_EXPR_NODES = (
    ast.Compose,
    ast.TensorExpr,
    ast.Fan,
    ast.Repeat,
    ast.Stack,
    ast.Scan,
    ast.IdentityExpr,
)


def _hover_word(doc: Document, line: int, col: int) -> Hover | None:
    if line >= len(doc.lines):
        return None
    text = doc.lines[line]
    for m in _WORD.finditer(text):
        if m.start() <= col <= m.end():
            md = word_markdown(m.group())
            if md is None and m.group() in FAMILIES:
                md = family_markdown(FAMILIES[m.group()])
            if md is None:
                md = _element_markdown(doc, line, m.group())
            if md is None:
                return None
            offset = doc.file.line_starts[line] if line < len(doc.file.line_starts) else 0
            rng = Range(line, m.start(), line, m.end(), offset + m.start(), offset + m.end())
            return Hover(md, rng)
    return None


def _marginal_hover(where: Located, local) -> str:
    """The hover of a summed-out latent: the observed sites of its block's body."""
    item = where.item
    summed: list[str] = []
    grouped = None
    if isinstance(item, ast.Program):
        for index, unit in enumerate(item.steps):
            node = unit.node
            if isinstance(node, ast.MarginalizeStep) and node.var.text == local.name:
                for option in node.options:
                    if option.name.text == "over" and isinstance(option.value, ast.NameOpt):
                        grouped = option.value.name.text
                for inner in item.body_of(index):
                    if isinstance(inner.node, ast.SampleStep) and inner.node.observed:
                        summed.append(inner.node.var.text)
                break
    return marginal_markdown(local, summed, grouped)


def _bound_by_scan(doc: Document, where: Located, var: str) -> bool:
    """Whether ``var`` is the site of a step whose kernel ends in a ``scan``."""
    item = where.item
    if not isinstance(item, ast.Program):
        return False
    for unit in item.steps:
        node = unit.node
        if isinstance(node, ast.SampleStep) and node.var.text == var:
            source = node.source.callee if isinstance(node.source, ast.Apply) else node.source
            return _ends_in_scan(doc, source, depth=0)
    return False


def _ends_in_scan(doc: Document, expr: ast.Expr, depth: int) -> bool:
    if depth > 20:
        return False
    if isinstance(expr, ast.Scan):
        return True
    if isinstance(expr, ast.Compose):
        return _ends_in_scan(doc, expr.second, depth + 1)
    if isinstance(expr, ast.Ref):
        symbol = doc.symbols.get(expr.name.text)
        if symbol is not None and isinstance(symbol.unit.node, ast.LetDecl):
            return _ends_in_scan(doc, symbol.unit.node.expr, depth + 1)
    return False


def _element_markdown(doc: Document, line: int, word: str) -> str | None:
    """A named element of a finite set, hovered in the set's own declaration."""
    loc = doc.unit_at(line)
    if loc is None or not isinstance(loc.unit.node, ast.ObjectDecl):
        return None
    symbol = doc.symbols.get(loc.unit.node.name.text)
    t = symbol.info.type if symbol is not None else None
    if not isinstance(t, T.FinSet) or t.elements is None or word not in t.elements:
        return None
    index = t.elements.index(word)
    return (
        f"```qvr\n{word} : {symbol.name if symbol else ''}\n```\n\n"
        f"element {index} of {{{', '.join(t.elements)}}}: the int64 index {index}"
    )
