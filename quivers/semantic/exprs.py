"""Typing of type expressions and morphism expressions (spec section 5)."""

from __future__ import annotations

from quivers.semantic import types as T
from quivers.semantic.context import Ctx
from quivers.semantic.model import SymbolInfo
from quivers.syntax import ast

ARROW_KINDS = ("morphism", "let", "program")


def resolve_type(ctx: Ctx, node: ast.TypeExpr) -> T.Type:
    result: T.Type
    if isinstance(node, ast.FinSetType):
        if node.bare:
            ctx.error(
                "E0203",
                f"a bare size '{node.size}' is the oldest spelling of a finite set",
                node.span,
                suggestion=f"write FinSet {node.size} (a space is written Real {node.size})",
                replacement=f"FinSet {node.size}",
            )
        if node.size < 1:
            ctx.error(
                "E0201", f"a finite set needs at least one element, not {node.size}", node.span
            )
        result = T.FinSet(max(node.size, 1))
    elif isinstance(node, ast.EnumType):
        names = [e.text for e in node.elements]
        seen: set[str] = set()
        for element in node.elements:
            if element.text in seen:
                ctx.error("E0202", f"element '{element.text}' is named twice", element.span)
            seen.add(element.text)
        result = T.FinSet(len(names), tuple(names))
    elif isinstance(node, ast.SpaceType):
        if node.dim < 1:
            ctx.error("E0201", f"{node.kind} {node.dim}: a dimension must be at least 1", node.span)
        result = T.Space(node.kind, max(node.dim, 1))
    elif isinstance(node, ast.TypeRef):
        info = ctx.resolve(node.name, ("object",), "object")
        result = info.type if info is not None and not isinstance(info.type, T.Arrow) else T.UNKNOWN
    else:
        result = T.product([resolve_type(ctx, f) for f in node.factors])
    ctx.typed(node, result)
    return result


def type_of(ctx: Ctx, node: ast.Expr) -> T.Arrow | None:
    """The arrow type of a morphism expression, or None after reporting why not."""
    result = _type_of(ctx, node)
    if result is not None:
        ctx.typed(node, result)
    return result


def _type_of(ctx: Ctx, node: ast.Expr) -> T.Arrow | None:
    if isinstance(node, ast.Ref):
        info = ctx.resolve(node.name, ARROW_KINDS, "morphism")
        if info is not None and info.template:
            params = ", ".join(f"{n} : {k}" for n, k in info.template)
            ctx.error(
                "E0519",
                f"program '{node.name.text}' is a template ({params}): it has no morphism "
                "until its parameters are given",
                node.span,
                suggestion=f"export it and give them from Python: load(path, ...) or "
                f"prog.{node.name.text}(...)",
            )
            return None
        if info is not None and info.forward and not ctx.scan_cell:
            ctx.error(
                "E0545",
                f"'{node.name.text}' returns the state its marginalize block sums out, so it "
                "is a forward cell: it can only be the cell of a scan",
                node.span,
                suggestion=f"use it as scan({node.name.text})",
            )
            return None
        return info.arrow() if info is not None else None
    if isinstance(node, ast.Compose):
        return _compose(ctx, node)
    if isinstance(node, ast.TensorExpr):
        left, right = type_of(ctx, node.left), type_of(ctx, node.right)
        if left is None or right is None:
            return None
        return T.Arrow(T.product([left.dom, right.dom]), T.product([left.cod, right.cod]))
    if isinstance(node, ast.Fan):
        return _fan(ctx, node)
    if isinstance(node, ast.Repeat | ast.Stack):
        return _endo(ctx, node)
    if isinstance(node, ast.Scan):
        return _scan(ctx, node)
    if isinstance(node, ast.IdentityExpr):
        t = resolve_type(ctx, node.type)
        return T.Arrow(t, t)
    if isinstance(node, ast.Apply):
        ctx.error(
            "E0407",
            "a morphism can be applied to values only in a program step",
            node.span,
            suggestion="use it in a `sample` or `observe` step of a program",
        )
        return None
    return None


def _compose(ctx: Ctx, node: ast.Compose) -> T.Arrow | None:
    first, second = type_of(ctx, node.first), type_of(ctx, node.second)
    if first is None or second is None:
        return None
    if not T.assignable(first.cod, second.dom):
        ctx.error(
            "E0401",
            f"cannot compose {_label(node.first)}: {first.show()} with "
            f"{_label(node.second)}: {second.show()}; "
            f"its codomain {T.describe(first.cod)} is not {T.describe(second.dom)}",
            node.span,
        )
        return T.Arrow(first.dom, second.cod)
    return T.Arrow(first.dom, second.cod)


def _fan(ctx: Ctx, node: ast.Fan) -> T.Arrow | None:
    if len(node.parts) == 1:
        part = node.parts[0]
        arrow = type_of(ctx, part)
        if arrow is None:
            return None
        info = _symbol_of(ctx, part)
        copies = info.replicate if info is not None else None
        if not copies:
            ctx.error(
                "E0406",
                f"fan of the single morphism {_label(part)} needs it declared with replicate=N",
                node.span,
                suggestion="add `replicate=N` to its options, or fan several morphisms",
            )
            return T.Arrow(arrow.dom, arrow.cod)
        return T.Arrow(arrow.dom, T.Product(tuple([arrow.cod] * copies)))
    arrows = [type_of(ctx, p) for p in node.parts]
    known = [(p, a) for p, a in zip(node.parts, arrows, strict=True) if a is not None]
    if len(known) != len(arrows):
        return None
    first_part, first = known[0]
    for part, arrow in known[1:]:
        if not T.same(arrow.dom, first.dom):
            ctx.error(
                "E0402",
                f"fan parts must share a domain: {_label(first_part)} takes "
                f"{T.describe(first.dom)} but {_label(part)} takes {T.describe(arrow.dom)}",
                part.span,
            )
    return T.Arrow(first.dom, T.Product(tuple(a.cod for _, a in known)))


def _endo(ctx: Ctx, node: ast.Repeat | ast.Stack) -> T.Arrow | None:
    word = "repeat" if isinstance(node, ast.Repeat) else "stack"
    if node.count is not None and (
        node.count.value < 1 or node.count.value != int(node.count.value)
    ):
        ctx.error(
            "E0405",
            f"{word} count must be a positive integer, not {node.count.text}",
            node.count.span,
        )
    arrow = type_of(ctx, node.body)
    if arrow is None:
        return None
    if not T.same(arrow.dom, arrow.cod):
        ctx.error(
            "E0403",
            f"{word} needs a morphism from a type to itself, but {_label(node.body)} is "
            f"{arrow.show()}: {T.describe(arrow.dom)} is not {T.describe(arrow.cod)}",
            node.body.span,
        )
    return T.Arrow(arrow.dom, arrow.dom)


def _scan(ctx: Ctx, node: ast.Scan) -> T.Arrow | None:
    ctx.scan_cell = isinstance(node.cell, ast.Ref)
    try:
        arrow = type_of(ctx, node.cell)
    finally:
        ctx.scan_cell = False
    if arrow is None:
        return None
    split = T.scan_split(arrow.dom, arrow.cod)
    if split is None:
        ctx.error(
            "E0404",
            f"scan needs a cell of type A * H -> H, but {_label(node.cell)} is {arrow.show()}",
            node.cell.span,
            suggestion=f"declare it as X * {T.show(arrow.cod)} -> {T.show(arrow.cod)}",
        )
        return None
    return T.Arrow(split[0], arrow.cod)


def _symbol_of(ctx: Ctx, node: ast.Expr) -> SymbolInfo | None:
    if isinstance(node, ast.Ref) and not node.name.missing:
        found = ctx.lookup(node.name.text)
        return found if isinstance(found, SymbolInfo) else None
    return None


def _label(node: ast.Expr) -> str:
    if isinstance(node, ast.Ref):
        return f"'{node.name.text}'"
    return {
        ast.Compose: "the composite",
        ast.TensorExpr: "the product",
        ast.Fan: "the fan",
        ast.Repeat: "the repeat",
        ast.Stack: "the stack",
        ast.Scan: "the scan",
        ast.IdentityExpr: "the identity",
        ast.Apply: "the application",
    }.get(type(node), "the expression")
