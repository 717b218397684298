"""Turning lark parse trees into ``quivers.syntax.ast`` nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Token, Tree

from quivers.syntax import ast

Child = Any


def span_of(item: Tree | Token) -> ast.Span:
    if isinstance(item, Token):
        return ast.Span(
            (item.line or 1) - 1,
            (item.column or 1) - 1,
            (item.end_line or item.line or 1) - 1,
            (item.end_column or item.column or 1) - 1,
            item.start_pos or 0,
            item.end_pos or item.start_pos or 0,
        )
    meta = item.meta
    if getattr(meta, "empty", True):
        return ast.NO_SPAN
    return ast.Span(
        meta.line - 1,
        meta.column - 1,
        meta.end_line - 1,
        meta.end_column - 1,
        meta.start_pos,
        meta.end_pos,
    )


def join(a: ast.Span, b: ast.Span) -> ast.Span:
    return ast.Span(a.line, a.col, b.end_line, b.end_col, a.offset, b.end_offset)


def name(token: Token) -> ast.Name:
    return ast.Name(span_of(token), str(token))


def number(tree: Tree | Token) -> ast.NumberLit:
    if isinstance(tree, Token):  # a bare INT
        return ast.NumberLit(span_of(tree), float(tree), str(tree))
    token: Any = tree.children[0]
    sign = -1.0 if tree.data == "neg_number" else 1.0
    text = ("-" if sign < 0 else "") + str(token)
    return ast.NumberLit(span_of(tree), sign * float(token), text)


def _kids(tree: Tree) -> list[Any]:
    return tree.children


def _present(children: list[Child]) -> list[Child]:
    return [c for c in children if c is not None]


# ------------------------------------------------------------------------ types


def type_expr(tree: Tree) -> ast.TypeExpr:
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind == "finset_type":
        return ast.FinSetType(sp, int(ch[0]))
    if kind == "enum_type":
        return ast.EnumType(sp, [name(t) for t in ch])
    if kind == "space_type":
        return ast.SpaceType(sp, str(ch[0].children[0]), int(ch[1]))
    if kind == "type_ref":
        return ast.TypeRef(sp, name(ch[0]))
    if kind == "type_expr":
        return ast.ProductType(sp, [type_expr(c) for c in ch])
    raise ValueError(f"unexpected type node {kind}")


# ------------------------------------------------------------------ expressions


def expr(tree: Tree) -> ast.Expr:
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind == "ref":
        return ast.Ref(sp, name(ch[0]))
    if kind == "expr":
        return _fold(ch, ast.Compose)
    if kind == "tensor_expr":
        return _fold(ch, ast.TensorExpr)
    if kind == "apply":
        return ast.Apply(sp, expr(ch[0]), [_arg(c) for c in _present(ch[1:])])
    if kind == "fan":
        return ast.Fan(sp, [expr(c) for c in ch])
    if kind == "repeat":
        return ast.Repeat(sp, expr(ch[0]), number(ch[1]) if ch[1] is not None else None)
    if kind == "stack":
        return ast.Stack(sp, expr(ch[0]), number(ch[1]))
    if kind == "scan":
        return ast.Scan(sp, expr(ch[0]))
    if kind == "identity":
        return ast.IdentityExpr(sp, type_expr(ch[0]))
    raise ValueError(f"unexpected expression node {kind}")


def _fold(children: list[Tree], make: Callable[..., ast.Expr]) -> ast.Expr:
    result = expr(children[0])
    for child in children[1:]:
        right = expr(child)
        result = make(join(result.span, right.span), result, right)
    return result


def _arg(tree: Tree) -> ast.Name | ast.NumberLit:
    if tree.data == "arg_name":
        return name(_kids(tree)[0])
    return number(tree)


# --------------------------------------------------------------------- options


def option_value(tree: Tree) -> ast.OptionValue:
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind == "number_value":
        return ast.NumberOpt(sp, number(ch[0]))
    if kind == "name_value":
        return ast.NameOpt(sp, name(ch[0]))
    if kind == "call_value":
        return ast.CallOpt(sp, name(ch[0]), [number(c) for c in _present(ch[1:])])
    if kind == "string_value":
        return ast.StringOpt(sp, str(ch[0])[1:-1])
    raise ValueError(f"unexpected option value {kind}")


def family_clause(tree: Tree) -> ast.FamilyClause:
    inner = tree.children[0]
    kind, sp, ch = inner.data, span_of(inner), _kids(inner)
    if kind == "family_name":
        return ast.FamilyRef(sp, name(ch[0]), None)
    if kind == "family_call":
        return ast.FamilyRef(sp, name(ch[0]), [number(c) for c in _present(ch[1:])])
    rows = [[number(n) for n in row.children] for row in ch]
    return ast.MatrixLit(sp, rows)


# ----------------------------------------------------------------- declarations


def declaration(tree: Tree) -> ast.Node:
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind == "object_decl":
        return ast.ObjectDecl(sp, name(ch[0]), type_expr(ch[1]))
    if kind == "morphism_decl":
        opts_tree, fam_tree = ch[3], ch[4]
        options = (
            [
                ast.Option(span_of(o), name(o.children[0]), option_value(o.children[1]))
                for o in _present(opts_tree.children)
            ]
            if opts_tree is not None
            else []
        )
        return ast.MorphismDecl(
            sp,
            name(ch[0]),
            type_expr(ch[1]),
            type_expr(ch[2]),
            options,
            span_of(opts_tree) if opts_tree is not None else None,
            family_clause(fam_tree) if fam_tree is not None else None,
        )
    if kind == "let_decl":
        return ast.LetDecl(sp, name(ch[0]), expr(ch[1]))
    if kind == "export_decl":
        return ast.ExportDecl(sp, expr(ch[0]))
    if kind == "composition_decl":
        return ast.CompositionDecl(sp, name(ch[0]))
    raise ValueError(f"unexpected declaration {kind}")


def program_header(tree: Tree) -> ast.ProgramHeader:
    sp, ch = span_of(tree), _kids(tree)
    params = [name(t) for t in ch[1].children] if ch[1] is not None else None
    return ast.ProgramHeader(sp, name(ch[0]), params, type_expr(ch[2]), type_expr(ch[3]))


# ------------------------------------------------------------------------ steps

_BINOPS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def arith(tree: Tree | Token) -> ast.Arith:
    if isinstance(tree, Token):
        return ast.Num(span_of(tree), float(tree))
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind in _BINOPS:
        return ast.BinOp(sp, _BINOPS[kind], arith(ch[0]), arith(ch[1]))
    if kind == "neg":
        return ast.Neg(sp, arith(ch[0]))
    if kind == "num":
        return ast.Num(sp, float(ch[0]))
    if kind == "var":
        return ast.Var(sp, name(ch[0]))
    if kind == "call":
        return ast.Call(sp, name(ch[0]), [arith(c) for c in _present(ch[1:])])
    raise ValueError(f"unexpected arithmetic node {kind}")


def step(tree: Tree) -> ast.Step:
    kind, sp, ch = tree.data, span_of(tree), _kids(tree)
    if kind in ("sample_step", "observe_step"):
        annotation = type_expr(ch[1].children[0]) if ch[1] is not None else None
        return ast.SampleStep(sp, name(ch[0]), annotation, expr(ch[2]), kind == "observe_step")
    if kind == "let_step":
        return ast.LetStep(sp, name(ch[0]), arith(ch[1]))
    if kind == "score_step":
        return ast.ScoreStep(sp, name(ch[0]), arith(ch[1]))
    if kind == "return_step":
        names = [name(t) for t in ch]
        return ast.ReturnStep(sp, names, is_tuple=len(names) > 1)
    raise ValueError(f"unexpected step {kind}")


LOWER: dict[str, Callable[[Tree], ast.Node]] = {
    "declaration": declaration,
    "program_header": program_header,
    "step": step,
}
