"""Turning lark parse trees into ``quivers.syntax.ast`` nodes.

``Lowering`` is a lark ``Transformer`` with one method per grammar rule or alias
(named as the rule, as lark dispatches); a test checks that every tree the grammar
can build has its method and that no method is stale. A method gets the tree's
``meta`` (for its span) and its children, already lowered (bottom-up; tokens stay
lark tokens). A tree without a method, or an exception in a method, is a bug in
this module: it propagates (``__default__`` raises) and is never turned into a
syntax error.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer, Tree
from lark.tree import Meta

from quivers.core.families import FAMILIES
from quivers.syntax import ast

Kids = list[Any]


class LoweringError(Exception):
    """A parse tree that this module does not know how to lower (a bug, not user input)."""


def span_of(item: Token | Meta) -> ast.Span:
    """The span of a token, or of a tree from its ``meta``."""
    if isinstance(item, Token):
        return ast.Span(
            (item.line or 1) - 1,
            (item.column or 1) - 1,
            (item.end_line or item.line or 1) - 1,
            (item.end_column or item.column or 1) - 1,
            item.start_pos or 0,
            item.end_pos or item.start_pos or 0,
        )
    if getattr(item, "empty", True):
        return ast.NO_SPAN
    return ast.Span(
        item.line - 1,
        item.column - 1,
        item.end_line - 1,
        item.end_column - 1,
        item.start_pos,
        item.end_pos,
    )


def join(a: ast.Span, b: ast.Span) -> ast.Span:
    return ast.Span(a.line, a.col, b.end_line, b.end_col, a.offset, b.end_offset)


def _present(children: Kids) -> Kids:
    return [c for c in children if c is not None]


def _name(token: Token) -> ast.Name:
    return ast.Name(span_of(token), str(token))


def _int_literal(token: Token) -> ast.NumberLit:
    return ast.NumberLit(span_of(token), float(token), str(token))


def _fold(parts: Kids, make: Callable[[ast.Span, Any, Any], ast.Expr]) -> ast.Expr:
    result: ast.Expr = parts[0]
    for right in parts[1:]:
        result = make(join(result.span, right.span), result, right)
    return result


@dataclass(frozen=True, slots=True)
class KeywordArgument:
    """``name=value`` in a family call, until :func:`bind_arguments` orders it."""

    span: ast.Span
    name: ast.Name
    value: ast.Name | ast.NumberLit | ast.ListArg


def bind_arguments(
    callee: ast.Name, args: list[Any], span: ast.Span
) -> list[Any] | ast.ArgumentError:
    """The arguments in the family's parameter order: keyword arguments (a later
    spelling) become the positional call they spell, so both spellings are one tree.
    Mixing the two, an unknown or repeated parameter, or a missing one is an error."""
    keywords = [a for a in args if isinstance(a, KeywordArgument)]
    if not keywords:
        return args
    family = FAMILIES.get(callee.text)
    if family is None:
        return ast.ArgumentError(
            span,
            f"keyword arguments name a family's parameters, and '{callee.text}' is not a family",
            "pass the arguments by position",
        )
    names = [p.name for p in family.params]
    if len(keywords) != len(args):
        first = keywords[0].name.text
        return ast.ArgumentError(
            keywords[0].span,
            f"{family.signature()} is called with positional and keyword arguments: "
            f"parameter '{first}' is given by keyword",
            "give every argument by keyword or every one by position",
        )
    given: dict[str, Any] = {}
    for kw in keywords:
        key = kw.name.text
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"write {family.signature()}"
            return ast.ArgumentError(kw.name.span, f"{family.name} has no parameter '{key}'", hint)
        if key in given:
            return ast.ArgumentError(
                kw.name.span, f"parameter '{key}' of {family.name} is given twice", None
            )
        given[key] = kw.value
    missing = [n for n in names if n not in given]
    if missing:
        return ast.ArgumentError(
            span,
            f"{family.signature()}: parameter '{missing[0]}' is not given",
            f"add {missing[0]}=...",
        )
    return [given[n] for n in names]


def _kernel_parameters_as_options(options: list[ast.Option], clause: Any) -> tuple[list, Any]:
    """``~ Normal(0.0, 0.5)`` on a kernel (a later spelling) fixes those parameters:
    our spelling is ``[loc=0.0, scale=0.5] ~ Normal``. Only a kernel (role ``kernel``
    or no role), a known family and one argument per parameter are rewritten; on
    other roles the arguments are a prior's, and anything else is the checker's."""
    if not isinstance(clause, ast.FamilyRef) or not clause.args:
        return options, clause
    role = next((o.value for o in options if o.name.text == "role"), None)
    if role is not None and not (isinstance(role, ast.NameOpt) and role.name.text == "kernel"):
        return options, clause
    family = FAMILIES.get(clause.name.text)
    if family is None or len(clause.args) != family.arity:
        return options, clause
    fixed = [
        ast.Option(arg.span, ast.Name(ast.NO_SPAN, param.name), ast.NumberOpt(arg.span, arg))
        for param, arg in zip(family.params, clause.args, strict=True)
    ]
    bare = ast.FamilyRef(clause.name.span, clause.name, None)
    return [*options, *fixed], bare


def _site_step(meta: Meta, ch: Kids, observed: bool) -> ast.SampleStep:
    # NAME, annotation | None, source, (options, span) | None
    options, options_span = ch[3] if ch[3] is not None else ([], None)
    return ast.SampleStep(
        span_of(meta), _name(ch[0]), ch[1], ch[2], observed, options, options_span
    )


def _default_role(options: list[ast.Option]) -> list[ast.Option]:
    """A morphism without ``role`` (a later spelling) is a kernel: the tree is the one
    of ``[role=kernel, ...]``, the role written nowhere (no span)."""
    if any(o.name.text == "role" for o in options):
        return options
    kernel = ast.NameOpt(ast.NO_SPAN, ast.Name(ast.NO_SPAN, "kernel"))
    return [ast.Option(ast.NO_SPAN, ast.Name(ast.NO_SPAN, "role"), kernel), *options]


class Lowering(Transformer[Token, ast.Node]):
    """One method per rule of ``grammars/qvr.lark``; see the module docstring."""

    # Tokens are converted by the rules that hold them (a callback per token costs a
    # failed attribute lookup for every token without one).
    __visit_tokens__ = False

    def __default__(self, data: Any, children: Kids, meta: Meta) -> Any:
        raise LoweringError(f"no lowering method for grammar rule '{data}'")

    # lark's generic dispatch (a generator per tree, getattr, the v_args wrapper and a
    # try block per call) doubled the lowering time, a third of a cold check: calls go
    # straight to the rule's method with the tree's meta, and an exception in a method
    # propagates as itself.
    def _transform_tree(self, tree: Tree[Token]) -> Any:
        children = [self._transform_tree(c) if isinstance(c, Tree) else c for c in tree.children]
        method = getattr(self, tree.data, None)
        if method is None:
            return self.__default__(tree.data, children, tree.meta)
        return method(tree.meta, children)

    # -------------------------------------------------------------- numbers

    def number(self, meta: Meta, ch: Kids) -> ast.NumberLit:
        return ast.NumberLit(span_of(meta), float(ch[0]), str(ch[0]))

    def neg_number(self, meta: Meta, ch: Kids) -> ast.NumberLit:
        return ast.NumberLit(span_of(meta), -float(ch[0]), "-" + str(ch[0]))

    # ---------------------------------------------------------------- types

    def finset_type(self, meta: Meta, ch: Kids) -> ast.FinSetType:
        return ast.FinSetType(span_of(meta), int(ch[0]))

    def bare_size_type(self, meta: Meta, ch: Kids) -> ast.FinSetType:
        return ast.FinSetType(span_of(meta), int(ch[0]), bare=True)

    def enum_type(self, meta: Meta, ch: Kids) -> ast.EnumType:
        return ast.EnumType(span_of(meta), [_name(t) for t in ch])

    def space_kind(self, meta: Meta, ch: Kids) -> str:
        return str(ch[0])

    def space_type(self, meta: Meta, ch: Kids) -> ast.SpaceType:
        return ast.SpaceType(span_of(meta), ch[0], int(ch[1]))

    def type_ref(self, meta: Meta, ch: Kids) -> ast.TypeRef:
        return ast.TypeRef(span_of(meta), _name(ch[0]))

    def type_expr(self, meta: Meta, ch: Kids) -> ast.ProductType:
        return ast.ProductType(span_of(meta), ch)

    # ---------------------------------------------------------- expressions

    def ref(self, meta: Meta, ch: Kids) -> ast.Ref:
        return ast.Ref(span_of(meta), _name(ch[0]))

    def expr(self, meta: Meta, ch: Kids) -> ast.Expr:
        return _fold(ch, ast.Compose)

    def tensor_expr(self, meta: Meta, ch: Kids) -> ast.Expr:
        return _fold(ch, ast.TensorExpr)

    def apply(self, meta: Meta, ch: Kids) -> ast.Apply | ast.ArgumentError:
        args = _present(ch[1:])
        callee = ch[0]
        if isinstance(callee, ast.Ref):
            bound = bind_arguments(callee.name, args, span_of(meta))
            if isinstance(bound, ast.ArgumentError):
                return bound
            args = bound
        return ast.Apply(span_of(meta), callee, args)

    def keyword_arg(self, meta: Meta, ch: Kids) -> KeywordArgument:
        value = _name(ch[1]) if isinstance(ch[1], Token) else ch[1]
        return KeywordArgument(span_of(meta), _name(ch[0]), value)

    def arg_name(self, meta: Meta, ch: Kids) -> ast.Name:
        return _name(ch[0])

    def list_arg(self, meta: Meta, ch: Kids) -> ast.ListArg:
        return ast.ListArg(span_of(meta), _present(ch))

    def item_name(self, meta: Meta, ch: Kids) -> ast.Name:
        return _name(ch[0])

    def family_call_arg(self, meta: Meta, ch: Kids) -> ast.Apply | ast.ArgumentError:
        """``Normal(0.0, 1.0)`` inside a list: a family call, as in a step."""
        name = _name(ch[0])
        return self.apply(meta, [ast.Ref(name.span, name), *ch[1:]])

    def fan(self, meta: Meta, ch: Kids) -> ast.Fan:
        return ast.Fan(span_of(meta), ch)

    def repeat(self, meta: Meta, ch: Kids) -> ast.Repeat:
        count = _int_literal(ch[1]) if ch[1] is not None else None
        return ast.Repeat(span_of(meta), ch[0], count)

    def stack(self, meta: Meta, ch: Kids) -> ast.Stack:
        return ast.Stack(span_of(meta), ch[0], _int_literal(ch[1]))

    def scan(self, meta: Meta, ch: Kids) -> ast.Scan:
        return ast.Scan(span_of(meta), ch[0])

    def rscan(self, meta: Meta, ch: Kids) -> ast.Scan:
        return ast.Scan(span_of(meta), ch[0], reverse=True)

    def identity(self, meta: Meta, ch: Kids) -> ast.IdentityExpr:
        return ast.IdentityExpr(span_of(meta), ch[0])

    # -------------------------------------------------------------- options

    def options(self, meta: Meta, ch: Kids) -> tuple[list[ast.Option], ast.Span]:
        return _present(ch), span_of(meta)

    def option(self, meta: Meta, ch: Kids) -> ast.Option:
        return ast.Option(span_of(meta), _name(ch[0]), ch[1])

    def number_value(self, meta: Meta, ch: Kids) -> ast.NumberOpt:
        return ast.NumberOpt(span_of(meta), ch[0])

    def name_value(self, meta: Meta, ch: Kids) -> ast.NameOpt:
        return ast.NameOpt(span_of(meta), _name(ch[0]))

    def call_value(self, meta: Meta, ch: Kids) -> ast.CallOpt:
        return ast.CallOpt(span_of(meta), _name(ch[0]), _present(ch[1:]))

    def string_value(self, meta: Meta, ch: Kids) -> ast.StringOpt:
        return ast.StringOpt(span_of(meta), str(ch[0])[1:-1])

    def list_value(self, meta: Meta, ch: Kids) -> ast.ListOpt:
        return ast.ListOpt(span_of(meta), [_name(t) for t in ch])

    def family_clause(self, meta: Meta, ch: Kids) -> ast.FamilyClause:
        clause: ast.FamilyClause = ch[0]
        return clause

    def family_name(self, meta: Meta, ch: Kids) -> ast.FamilyRef:
        return ast.FamilyRef(span_of(meta), _name(ch[0]), None)

    def family_call(self, meta: Meta, ch: Kids) -> ast.FamilyRef | ast.ArgumentError:
        name = _name(ch[0])
        bound = bind_arguments(name, _present(ch[1:]), span_of(meta))
        if isinstance(bound, ast.ArgumentError):
            return bound
        return ast.FamilyRef(span_of(meta), name, bound)

    def matrix(self, meta: Meta, ch: Kids) -> ast.MatrixLit:
        return ast.MatrixLit(span_of(meta), ch)

    def row(self, meta: Meta, ch: Kids) -> list[ast.NumberLit]:
        return ch

    # --------------------------------------------------------- declarations

    def object_decl(self, meta: Meta, ch: Kids) -> ast.ObjectDecl | ast.DeclGroup:
        *names, type_ = ch
        decls = [
            ast.ObjectDecl(span_of(meta), _name(t), type_ if i == 0 else copy.deepcopy(type_))
            for i, t in enumerate(names)
        ]
        return decls[0] if len(decls) == 1 else ast.DeclGroup(span_of(meta), decls)

    def morphism_decl(self, meta: Meta, ch: Kids) -> ast.MorphismDecl | ast.DeclGroup:
        *names, dom, cod, opts, family = ch
        decls = []
        for i, token in enumerate(names):
            parts = (dom, cod, opts, family) if i == 0 else copy.deepcopy((dom, cod, opts, family))
            options, options_span = parts[2] if parts[2] is not None else ([], None)
            options, clause = _kernel_parameters_as_options(options, parts[3])
            options = _default_role(options)
            decls.append(
                ast.MorphismDecl(
                    span_of(meta), _name(token), parts[0], parts[1], options, options_span, clause
                )
            )
        return decls[0] if len(decls) == 1 else ast.DeclGroup(span_of(meta), decls)

    def let_decl(self, meta: Meta, ch: Kids) -> ast.LetDecl:
        return ast.LetDecl(span_of(meta), _name(ch[0]), ch[1])

    def export_decl(self, meta: Meta, ch: Kids) -> ast.ExportDecl:
        return ast.ExportDecl(span_of(meta), ch[0])

    def composition_decl(self, meta: Meta, ch: Kids) -> ast.CompositionDecl:
        return ast.CompositionDecl(span_of(meta), _name(ch[0]))

    def composition_named(self, meta: Meta, ch: Kids) -> ast.CompositionDecl:
        return ast.CompositionDecl(span_of(meta), _name(ch[1]), label=_name(ch[0]))

    def composition_level(self, meta: Meta, ch: Kids) -> ast.CompositionDecl:
        if ch[1] == "level":  # `[level=algebra]`: our spelling's tree
            return ast.CompositionDecl(span_of(meta), _name(ch[0]))
        key = _name(ch[1])
        # the value is implied, not written: no extent of its own
        value = ast.NameOpt(key.span, ast.Name(ast.NO_SPAN, "algebra"))
        return ast.CompositionDecl(span_of(meta), _name(ch[0]), [ast.Option(key.span, key, value)])

    def composition_options(self, meta: Meta, ch: Kids) -> ast.CompositionDecl:
        return ast.CompositionDecl(span_of(meta), _name(ch[0]), ch[1][0])

    def deduction_decl(self, meta: Meta, ch: Kids) -> ast.DeductionDecl:
        options, options_span = ch[3] if ch[3] is not None else ([], None)
        return ast.DeductionDecl(
            span_of(meta), _name(ch[0]), ch[1], ch[2], options, options_span, _present(ch[4:])
        )

    def atoms_part(self, meta: Meta, ch: Kids) -> ast.AtomsPart:
        return ast.AtomsPart(span_of(meta), [_name(t) for t in ch])

    def rule_part(self, meta: Meta, ch: Kids) -> ast.RulePart:
        # name, premises..., TURNSTILE, conclusion, LEARNABLE | None
        turnstile = next(
            i for i, c in enumerate(ch) if isinstance(c, Token) and c.type == "TURNSTILE"
        )
        learnable = span_of(ch[-1]) if ch[-1] is not None else None
        return ast.RulePart(
            span_of(meta), _name(ch[0]), ch[1:turnstile], ch[turnstile + 1], learnable
        )

    def lexicon_part(self, meta: Meta, ch: Kids) -> ast.LexiconPart:
        return ast.LexiconPart(span_of(meta), _present(ch))

    def lexicon_entry(self, meta: Meta, ch: Kids) -> ast.LexEntry:
        s = span_of(ch[0])  # the word without its quotes
        inner = ast.Span(
            s.line, s.col + 1, s.end_line, s.end_col - 1, s.offset + 1, s.end_offset - 1
        )
        word = ast.Name(inner, str(ch[0])[1:-1])
        learnable = span_of(ch[3]) if ch[3] is not None else None
        return ast.LexEntry(span_of(meta), word, ch[1], ch[2], learnable)

    def term_atom(self, meta: Meta, ch: Kids) -> ast.DTerm:
        return ast.DTerm(span_of(meta), _name(ch[0]), [])

    def term_call(self, meta: Meta, ch: Kids) -> ast.DTerm:
        return ast.DTerm(span_of(meta), _name(ch[0]), ch[1:])

    def program_header(self, meta: Meta, ch: Kids) -> ast.ProgramHeader:
        given = ch[1] or []
        names = [p for p in given if isinstance(p, ast.Name)]
        template = [p for p in given if isinstance(p, ast.TemplateParam)]
        params = names if names else None
        return ast.ProgramHeader(span_of(meta), _name(ch[0]), params, ch[2], ch[3], template)

    def params(self, meta: Meta, ch: Kids) -> list[ast.Name | ast.TemplateParam]:
        return list(ch)

    def plain_param(self, meta: Meta, ch: Kids) -> ast.Name:
        return _name(ch[0])

    def template_param(self, meta: Meta, ch: Kids) -> ast.TemplateParam:
        return ast.TemplateParam(span_of(meta), _name(ch[0]), ch[1])

    def param_kind(self, meta: Meta, ch: Kids) -> ast.Name:
        return _name(ch[0])

    # ---------------------------------------------------------------- steps

    def sample_step(self, meta: Meta, ch: Kids) -> ast.SampleStep:
        return _site_step(meta, ch, observed=False)

    def tuple_sample_step(self, meta: Meta, ch: Kids) -> ast.SampleStep:
        parts: list[ast.Name] = ch[0]
        site = ast.Name(ast.NO_SPAN, "_".join(p.text for p in parts))
        options, options_span = ch[3] if ch[3] is not None else ([], None)
        return ast.SampleStep(
            span_of(meta), site, ch[1], ch[2], False, options, options_span, parts
        )

    def var_tuple(self, meta: Meta, ch: Kids) -> list[ast.Name]:
        return [_name(t) for t in ch]

    def observe_step(self, meta: Meta, ch: Kids) -> ast.SampleStep:
        return _site_step(meta, ch, observed=True)

    def marginalize_step(self, meta: Meta, ch: Kids) -> ast.MarginalizeStep:
        options, options_span = ch[3] if ch[3] is not None else ([], None)
        return ast.MarginalizeStep(span_of(meta), _name(ch[0]), ch[1], ch[2], options, options_span)

    def annotation(self, meta: Meta, ch: Kids) -> ast.TypeExpr:
        annotated: ast.TypeExpr = ch[0]
        return annotated

    def let_step(self, meta: Meta, ch: Kids) -> ast.LetStep:
        return ast.LetStep(span_of(meta), _name(ch[0]), ch[1])

    def score_step(self, meta: Meta, ch: Kids) -> ast.ScoreStep:
        return ast.ScoreStep(span_of(meta), _name(ch[0]), ch[1])

    def return_step(self, meta: Meta, ch: Kids) -> ast.ReturnStep:
        return ast.ReturnStep(span_of(meta), [_name(t) for t in ch], is_tuple=len(ch) > 1)

    # ----------------------------------------------------------- arithmetic

    def add(self, meta: Meta, ch: Kids) -> ast.BinOp:
        return ast.BinOp(span_of(meta), "+", ch[0], ch[1])

    def sub(self, meta: Meta, ch: Kids) -> ast.BinOp:
        return ast.BinOp(span_of(meta), "-", ch[0], ch[1])

    def mul(self, meta: Meta, ch: Kids) -> ast.BinOp:
        return ast.BinOp(span_of(meta), "*", ch[0], ch[1])

    def div(self, meta: Meta, ch: Kids) -> ast.BinOp:
        return ast.BinOp(span_of(meta), "/", ch[0], ch[1])

    def neg(self, meta: Meta, ch: Kids) -> ast.Neg:
        return ast.Neg(span_of(meta), ch[0])

    def num(self, meta: Meta, ch: Kids) -> ast.Num:
        return ast.Num(span_of(meta), float(ch[0]))

    def var(self, meta: Meta, ch: Kids) -> ast.Var:
        return ast.Var(span_of(meta), _name(ch[0]))

    def call(self, meta: Meta, ch: Kids) -> ast.Call:
        return ast.Call(span_of(meta), _name(ch[0]), _present(ch[1:]))

    def index(self, meta: Meta, ch: Kids) -> ast.Index:
        return ast.Index(span_of(meta), _name(ch[0]), _name(ch[1]))


LOWERING = Lowering()


def lower(tree: Any) -> ast.Node:
    """The AST node of a unit's parse tree (from any start rule)."""
    node: ast.Node = LOWERING.transform(tree)
    return node
