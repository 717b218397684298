"""Checking programs: parameters, steps, sites, arithmetic and the return (spec section 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quivers.core.families import (
    FAMILIES,
    MIXTURE,
    Domain,
    Family,
    Param,
    mixture_component_problem,
    out_of_domain,
)
from quivers.core.vocabulary import (
    ARITH_FUNCTIONS,
    DEFAULT_MARGINAL_REDUCTION,
    FINSET,
    RECURRENCES,
    REDUCTIONS,
    SPACE_BY_DOMAIN,
    SPACE_KINDS,
    space_of,
)
from quivers.semantic import types as T
from quivers.semantic.context import Ctx
from quivers.semantic.decls import (
    declare,
    did_you_mean,
    lookup_family,
    support_fits,
    support_words,
)
from quivers.semantic.exprs import resolve_type, type_of
from quivers.semantic.model import Local, SymbolInfo
from quivers.semantic.options import SetOption, StepOptions, check_step_options
from quivers.syntax import ast


class _Program:
    """State while walking one program's steps."""

    def __init__(self, ctx: Ctx, dom: T.Type, cod: T.Type) -> None:
        self.ctx = ctx
        self.dom = dom
        self.cod = cod
        self.returned_at: int | None = None
        self.returned: T.Type | None = None
        self.blocks: list[_Block] = []  # the open `marginalize` blocks, innermost last
        self.closed: _Block | None = None  # the block closed just before this step
        self.forward = False  # returns the state its last block sums out


class _Block:
    """An open ``marginalize`` block while its body is checked."""

    def __init__(self, var: ast.Name, depth: int, binary: bool) -> None:
        self.var = var
        self.depth = depth
        self.binary = binary  # a Bernoulli latent: 0 or 1 in arithmetic
        self.bound: list[str] = []  # let/score names of the body (out of scope after it)
        self.steps = 0
        self.unit_index = 0  # of its header step


def check_program(ctx: Ctx, program: ast.Program) -> None:
    header = program.header.node
    if not isinstance(header, ast.ProgramHeader):
        if isinstance(header, ast.ErrorNode) and header.name is not None:
            ctx.result.declares = header.name.text
            ctx.ref(header.name, header.name.text, "global", is_decl=True)
            ctx.result.symbol = SymbolInfo("program", T.Arrow(T.UNKNOWN, T.UNKNOWN))
        dom: T.Type = T.UNKNOWN
        cod: T.Type = T.UNKNOWN
    else:
        declare(ctx, header.name)
        template = _bind_template(ctx, header)
        dom, cod = resolve_type(ctx, header.dom), resolve_type(ctx, header.cod)
        ctx.result.symbol = SymbolInfo("program", T.Arrow(dom, cod), template=template)
        _bind_params(ctx, header, dom)
    state = _Program(ctx, dom, cod)
    for index, unit in enumerate(program.steps, start=1):
        ctx.unit_index = index
        node = unit.node
        state.closed = None
        while state.blocks and state.blocks[-1].depth >= unit.depth:
            _close_block(state)
        if state.blocks:
            state.blocks[-1].steps += 1
            if not _allowed_in_body(state, node):
                continue
        if state.returned_at is not None and not isinstance(node, ast.ErrorNode):
            ctx.error("E0509", "step after the program's return is never run", node.span)
        if isinstance(node, ast.MarginalizeStep):
            _marginalize(state, node, unit.depth)
        elif isinstance(node, ast.SampleStep):
            _sample(state, node)
        elif isinstance(node, ast.LetStep):
            t = _arith(state, node.value)
            _bind(ctx, node.var, "let", t, _arith_is_global(ctx, node.value))
            _in_body(state, node.var)
        elif isinstance(node, ast.ScoreStep):
            _arith(state, node.value)
            _bind(ctx, node.var, "score", T.real(1))
            _in_body(state, node.var)
        elif isinstance(node, ast.ReturnStep):
            _return(state, node)
            state.returned_at = index
        elif (
            isinstance(node, ast.ErrorNode)
            and node.name is not None
            and node.keyword
            in (
                "sample",
                "observe",
                "let",
                "score",
                "marginalize",
            )
        ):
            _bind(ctx, node.name, node.keyword, T.UNKNOWN)
    while state.blocks:
        _close_block(state)
    ctx.unit_index = 0
    if isinstance(header, ast.ProgramHeader) and state.forward:
        ctx.result.symbol = SymbolInfo("program", T.Arrow(dom, cod), forward=True)
    if (
        isinstance(header, ast.ProgramHeader)
        and state.returned is not None
        and (_plate_program(dom, cod) or _plate_of_codomain(dom, cod, state.returned))
        and not T.same(state.returned, cod)
    ):
        # a plate program's signature records what it really returns
        ctx.result.symbol = SymbolInfo(
            "program",
            T.Arrow(dom, cod),
            returns=state.returned,
            template=ctx.result.symbol.template if ctx.result.symbol is not None else (),
        )
    if isinstance(header, ast.ProgramHeader):
        if not program.steps:
            ctx.error("E0516", f"program '{header.name.text}' has no steps", header.name.span)
        elif state.returned_at is None:
            ctx.error(
                "E0507",
                f"program '{header.name.text}' never returns a value",
                header.name.span,
                suggestion="end it with `return <variable>`",
            )


def _plate_program(dom: T.Type, cod: T.Type) -> bool:
    """``program p : K -> K`` over a finite set K: the plate idiom, whose steps draw and
    observe one value per element of K and which may return any bound value. Read
    from the header alone, so a broken step never changes what the return may be."""
    return isinstance(dom, T.FinSet) and isinstance(cod, T.FinSet) and T.same(dom, cod)


def _plate_of_codomain(dom: T.Type, cod: T.Type, given: T.Type) -> bool:
    """``program p : K -> V`` over a finite set K, with V a space, returning a plate
    value with one V per element of its set (the gallery's ``return beta_1`` from
    ``Resp -> Val``, ``beta_1 : Real 1 [Cat]``): the codomain is the space each
    element of the returned plate lies in (docs/language.md, 10.7)."""
    return (
        isinstance(dom, T.FinSet)
        and isinstance(cod, T.Space)
        and cod.plate is None
        and T.plate_of(given) is not None
        and T.assignable(T.with_plate(given, None), cod)
    )


def _bind_template(ctx: Ctx, header: ast.ProgramHeader) -> tuple[tuple[str, str], ...]:
    """A template's typed parameters: a number is a global value of its kind's space
    (``alpha : Real`` is ``Real 1``); ``K : FinSet`` is a finite set, in scope as a type
    in this program. Its size is the given value when the template is instantiated,
    and unknown (symbolic) otherwise: checks that need it wait for the instantiation."""
    given = ctx.values.get(header.name.text, {})
    ctx.given = given
    out: list[tuple[str, str]] = []
    for param in header.template:
        name, kind = param.name, param.kind.text
        if name.missing:
            continue
        out.append((name.text, kind))
        _shadowing(ctx, header, name, kind)
        if kind == FINSET:
            size = given.get(name.text)
            known = isinstance(size, int) and size >= 1
            t = T.FinSet(size if isinstance(size, int) and known else 1, None, name.text, not known)
            if name.text in ctx.sets or name.text in ctx.locals:
                ctx.error("E0506", f"'{name.text}' is already bound in this program", name.span)
                continue
            ctx.sets[name.text] = SymbolInfo("object", t)
            ctx.ref(name, name.text, "local", is_decl=True)
            ctx.locals[name.text] = Local(name.text, "template", t, 0, name.span, True)
            ctx.typed(name, t)
            continue
        space = T.Space(kind, 1) if kind in SPACE_KINDS else T.real(1)
        _bind(ctx, name, "template", space, is_global=True)
    return tuple(out)


def _shadowing(ctx: Ctx, header: ast.ProgramHeader, name: ast.Name, kind: str) -> None:
    """W0106: inside its program a template parameter hides the top-level declaration
    of the same name (``K : FinSet`` beside ``object K : FinSet 3``), so every use of
    the name there, the header's types included, is the parameter, silently. The
    lookup is recorded, so declaring or renaming that name re-checks the program."""
    if name.text in ctx.sets:
        return  # a parameter given twice: E0506
    found = ctx.lookup(name.text)
    if not isinstance(found, SymbolInfo):
        return
    what = {"let": "named expression"}.get(found.kind, found.kind)
    t = found.type
    hidden = f"'{name.text}' ({t.show()})" if isinstance(t, T.Arrow) else T.describe(t)
    ctx.warn(
        "W0106",
        f"template parameter '{name.text} : {kind}' shadows the top-level {what} {hidden} "
        f"inside program '{header.name.text}': every '{name.text}' there is the parameter",
        name.span,
        suggestion=f"rename the parameter (or the {what}) if they are meant to differ",
    )


def _template_value(ctx: Ctx, local: Local) -> float | None:
    """The given value of a template's number parameter (an instantiation's check)."""
    if local.kind != "template" or local.name in ctx.sets:
        return None
    value = ctx.given.get(local.name)
    return float(value) if value is not None else None


def _bind_params(ctx: Ctx, header: ast.ProgramHeader, dom: T.Type) -> None:
    """Parameters name the whole input (one name), its factors, or its leaves."""
    if header.params is None:
        return
    count = len(header.params)
    parts: tuple[T.Type, ...]
    named = T.named_parts(dom, count)
    if count == 1:
        parts = (dom,)
    elif isinstance(dom, T.Unknown):
        parts = T.factors(dom)
    elif named is not None:
        parts = named
    else:
        ctx.error(
            "E0501",
            f"{count} parameter names for a domain {T.describe(dom)} with "
            f"{len(T.factors(dom))} factors ({len(T.leaves(dom))} when flattened)",
            header.span,
        )
        parts = T.factors(dom)
    for i, param in enumerate(header.params):
        t = parts[i] if i < len(parts) else T.UNKNOWN
        _bind(ctx, param, "param", t)


def _bind(
    ctx: Ctx,
    name: ast.Name,
    kind: str,
    t: T.Type,
    is_global: bool = False,
    site: str | None = None,
) -> None:
    if name.missing:
        return
    if name.text in ctx.locals and ctx.locals[name.text].kind != "host":
        ctx.error("E0506", f"'{name.text}' is already bound in this program", name.span)
        return
    ctx.locals[name.text] = Local(name.text, kind, t, ctx.unit_index, name.span, is_global, site)
    ctx.ref(name, name.text, "local", is_decl=True)
    ctx.typed(name, t)


def _local(ctx: Ctx, name: ast.Name) -> Local | None:
    """A bound variable used as a step argument."""
    if name.missing:
        return None
    if _out_of_scope(ctx, name):
        return None
    local = ctx.locals.get(name.text)
    if local is None or local.kind == "host":
        guess = did_you_mean(name.text, [n for n, v in ctx.locals.items() if v.kind != "host"])
        ctx.error(
            "E0502",
            f"unknown variable '{name.text}'",
            name.span,
            suggestion=f"did you mean '{guess}'?" if guess else "bind it with an earlier step",
            replacement=guess,
        )
        return None
    ctx.ref(name, name.text, "local")
    ctx.typed(name, local.type)
    return local


# ------------------------------------------------------------------ sample sites


def _sample(state: _Program, node: ast.SampleStep) -> None:
    ctx = state.ctx
    param = ctx.locals.get(node.var.text)
    if state.blocks and node.observed and param is not None and param.kind == "param":
        # `observe y <- emission(z)` with y an input: the input is the observation
        ctx.ref(node.var, node.var.text, "local")
        value, _ = _sample_value(state, node)
        if not isinstance(value, T.Unknown) and not T.assignable(param.type, value):
            ctx.error(
                "E0505",
                f"the input '{node.var.text}' is {T.describe(param.type)} but its kernel "
                f"gives {T.describe(value)}",
                node.span,
            )
        return
    forward = _forward_scan(ctx, node.source)
    value, is_global = _sample_value(state, node)
    if forward:
        if not node.observed:
            ctx.error(
                "E0545",
                f"scan of a forward cell sums its states out: nothing is drawn, so "
                f"'{node.var.text}' is observed (the input sequence), not sampled",
                node.span,
                suggestion=f"write observe {node.var.text} <- ...",
            )
        _bind(ctx, node.var, "forward", value)
        ctx.out_of_scope[node.var.text] = (
            "E0545",
            f"'{node.var.text}' is the forward pass of a chain whose states are summed out; "
            "its value (a draw of the last state from its filtering distribution) may only "
            "be returned",
        )
        return
    _bind_site(ctx, node, value, is_global)
    if state.blocks and T.plate_of(value) is not None:
        ctx.error(
            "E0541",
            f"'{node.var.text}' is one value per element of a plate, observed once, inside "
            f"the marginalize block of '{state.blocks[-1].var.text}', whose latent is one "
            "per row",
            node.span,
            suggestion="observe it before the block",
        )


def _forward_scan(ctx: Ctx, source: ast.Expr) -> bool:
    """``scan(cell)`` with ``cell`` a forward cell (a program returning a summed state)."""
    if not isinstance(source, ast.Scan) or not isinstance(source.cell, ast.Ref):
        return False
    found = ctx.lookup(source.cell.name.text)
    return isinstance(found, SymbolInfo) and found.forward


def _sample_value(state: _Program, node: ast.SampleStep) -> tuple[T.Type, bool]:
    """The value type of a site and whether it is global."""
    ctx = state.ctx
    kind = "observe" if node.observed else "sample"
    annotated = resolve_type(ctx, node.annotation) if node.annotation is not None else None
    value: T.Type = T.UNKNOWN
    is_global = False
    source = node.source
    opts = check_step_options(ctx, node.options, kind)
    family = _inline_family(ctx, source)
    if family is None and _unknown_family(ctx, source):
        return annotated or T.UNKNOWN, False
    if family is None:
        _options_need_family(ctx, opts)
    if family is not None:
        assert isinstance(source, ast.Apply)
        shape = _Shape.of(state, family, opts, annotated)
        annotated = shape.annotated  # the options may have said what the annotation names
        value, is_global = _family_value(state, family, source, annotated, node.var, shape)
        if T.plate_of(value) is not None:
            # a plate: one draw per element of its set, drawn (or observed) once
            annotated, is_global = None, True
        else:
            is_global = is_global and not node.observed  # observed sites are per row
    elif isinstance(source, ast.Apply) and _calls_template(ctx, source.callee):
        type_of(ctx, source.callee)  # E0519, once: the arguments are the template's
    elif isinstance(source, ast.Apply):
        arrow = None if _variable_as_source(ctx, source.callee) else type_of(ctx, source.callee)
        locals_ = [_arg_local(ctx, arg) for arg in source.args]
        if arrow is not None:
            value = arrow.cod
            known = [v for v in locals_ if v is not None]
            if len(known) == len(locals_):
                given = T.product([v.type for v in known]) if known else T.UNKNOWN
                if known and not T.assignable(given, arrow.dom):
                    shown = ", ".join(f"{v.name}: {T.show(v.type)}" for v in known)
                    ctx.error(
                        "E0503",
                        f"arguments ({shown}) have type {T.describe(given)} but "
                        f"{_callee(source.callee)} expects {T.describe(arrow.dom)}",
                        source.span,
                    )
                is_global = bool(known) and all(v.is_global for v in known) and not node.observed
        ctx.typed(source, arrow) if arrow is not None else None
    else:
        arrow = _source_arrow(ctx, source)
        if arrow is not None:
            value = arrow.cod
            if not T.assignable(state.dom, arrow.dom):
                ctx.error(
                    "E0514",
                    f"{_callee(source)} takes {T.describe(arrow.dom)} but the program input "
                    f"is {T.describe(state.dom)}",
                    source.span,
                    suggestion="apply it to bound values: m(a, b)",
                )
    if annotated is not None and not T.assignable(value, annotated):
        ctx.error(
            "E0505",
            f"{_bound_words(node)} is annotated {T.describe(annotated)} but its kernel gives "
            f"{T.describe(value)}",
            node.annotation.span if node.annotation is not None else node.span,
        )
    if annotated is not None and not isinstance(annotated, T.Unknown):
        value = annotated
    return value, is_global


def _bound_words(node: ast.SampleStep) -> str:
    if node.parts:
        return "(" + ", ".join(p.text for p in node.parts) + ")"
    return f"'{node.var.text}'"


def _bind_site(ctx: Ctx, node: ast.SampleStep, value: T.Type, is_global: bool) -> None:
    """Bind a site's variable; for ``sample (a, b) <- ...`` each name to its factor.

    The site of a tuple is named by its names joined with '_' (``a_b``), which is
    also bound, to the whole draw."""
    kind = "observe" if node.observed else "sample"
    if not node.parts:
        _bind(ctx, node.var, kind, value, is_global)
        return
    site, count = node.var.text, len(node.parts)
    parts: tuple[T.Type, ...] = (T.UNKNOWN,) * count
    if T.plate_of(value) is not None:
        ctx.error(
            "E0530",
            f"{_bound_words(node)} splits a draw of {T.describe(value)}: a plate value is one "
            "value per element, not a product",
            node.var_span,
            suggestion=f"bind it to one name: sample {site} <- ...",
        )
    elif not isinstance(value, T.Unknown):
        named = T.named_parts(value, count)
        if named is not None:
            parts = named
        else:
            ctx.error(
                "E0530",
                f"{count} names {_bound_words(node)} for a draw of {T.describe(value)}, which "
                f"has {len(T.factors(value))} factor(s) ({len(T.leaves(value))} when flattened)",
                node.var_span,
                suggestion="name one value per factor of the kernel's codomain",
            )
    if site in ctx.locals and ctx.locals[site].kind != "host":
        ctx.error(
            "E0506",
            f"'{site}', the site of {_bound_words(node)}, is already bound in this program",
            node.var_span,
        )
    else:
        ctx.locals[site] = Local(site, kind, value, ctx.unit_index, node.var_span, is_global)
    for name, t in zip(node.parts, parts, strict=True):
        _bind(ctx, name, kind, t, is_global, site)


def _calls_template(ctx: Ctx, callee: ast.Expr) -> bool:
    """``sub(0.6, School)`` with ``sub`` a template program (the gallery's call of a
    template from a step), which is not supported yet."""
    if not isinstance(callee, ast.Ref) or callee.name.missing:
        return False
    found = ctx.lookup(callee.name.text)
    return isinstance(found, SymbolInfo) and bool(found.template)


def _options_need_family(ctx: Ctx, opts: StepOptions) -> None:
    """``over``, ``iid_over`` and ``via`` shape an inline draw; a morphism's
    codomain fixes the shape of its draws."""
    for key, span in opts.spans:
        if key in ("over", "iid_over", "via"):
            ctx.error(
                "E0304",
                f"option '{key}' shapes an inline family draw, Family(...); a morphism's "
                "draws have the shape of its codomain",
                span,
                suggestion="remove the option, or draw from an inline family",
            )


def _variable_as_source(ctx: Ctx, source: ast.Expr) -> bool:
    """Report a bound variable used where a step needs a morphism or a family."""
    if not isinstance(source, ast.Ref) or source.name.missing:
        return False
    local = ctx.locals.get(source.name.text)
    if (
        local is None
        or local.kind == "host"
        or isinstance(ctx.lookup(source.name.text), SymbolInfo)
    ):
        return False
    ctx.ref(source.name, source.name.text, "local")
    ctx.error(
        "E0513",
        f"'{source.name.text}' is a variable bound in this program, not a morphism or family "
        "to sample from",
        source.span,
        suggestion=f"pass it as an argument: m({source.name.text})",
    )
    return True


def _source_arrow(ctx: Ctx, source: ast.Expr) -> T.Arrow | None:
    if _variable_as_source(ctx, source):
        return None
    if isinstance(source, ast.Ref) and not source.name.missing and source.name.text in FAMILIES:
        found = ctx.lookup(source.name.text)
        if not isinstance(found, SymbolInfo):
            family = FAMILIES[source.name.text]
            ctx.error(
                "E0504",
                f"inline family {family.name} needs its arguments",
                source.span,
                suggestion=f"write {family.signature()}",
            )
            return None
    return type_of(ctx, source)


def _inline_family(ctx: Ctx, source: ast.Expr) -> Family | None:
    if not isinstance(source, ast.Apply) or not isinstance(source.callee, ast.Ref):
        return None
    name = source.callee.name.text
    if name not in FAMILIES:
        return None
    return FAMILIES[name]


def _unknown_family(ctx: Ctx, source: ast.Expr) -> bool:
    """Report ``Fam(args)`` naming no family and no declaration: one diagnostic, and
    none for its arguments (numbers are family arguments, not morphism inputs)."""
    if not isinstance(source, ast.Apply) or not isinstance(source.callee, ast.Ref):
        return False
    name = source.callee.name
    if name.missing or ctx.lookup(name.text) is not None or name.text in ctx.locals:
        return False
    guess = did_you_mean(name.text, FAMILIES)
    if guess is None and not name.text[:1].isupper():
        return False  # an unknown morphism: the usual E0101 with its own suggestion
    lookup_family(ctx, name)  # reports E0306 with the suggestion
    for arg in ast.argument_names(source.args):
        _local(ctx, arg)
    return True


def _arg_local(ctx: Ctx, arg: ast.Name | ast.NumberLit | ast.ListArg | ast.Apply) -> Local | None:
    if isinstance(arg, ast.ListArg | ast.Apply):
        what = "a list" if isinstance(arg, ast.ListArg) else "a call"
        ctx.error("E0503", f"a morphism is applied to bound values, not to {what}", arg.span)
        return None
    if isinstance(arg, ast.NumberLit):
        ctx.error(
            "E0503",
            f"a morphism is applied to bound values, not to the number {arg.text}",
            arg.span,
        )
        return None
    return _local(ctx, arg)


def _family_value(
    state: _Program,
    family: Family,
    source: ast.Apply,
    annotated: T.Type | None,
    var: ast.Name,
    shape: _Shape,
) -> tuple[T.Type, bool]:
    ctx = state.ctx
    if family.name == MIXTURE:
        if shape.iid is not None or shape.via is not None:
            ctx.error(
                "E0304",
                "iid_over= and via= do not shape a Mixture draw (yet): annotate the plate "
                "instead, sample v : K <- Mixture(...)",
                source.span,
            )
        return _mixture_value(state, source, annotated, var)
    plate: T.FinSet | None = None
    if shape.iid is not None:
        plate = shape.iid
    elif (
        isinstance(annotated, T.FinSet)
        and family.support not in (Domain.FINITE, Domain.BINARY)
        and shape.via is None
    ):
        # `sample beta : K <- Normal(0.0, 5.0)`: one draw per element of K, never ids
        plate, annotated = annotated, None
    if len(source.args) != family.arity:
        ctx.error(
            "E0504",
            f"{family.signature()} takes {family.arity} argument(s), {len(source.args)} given",
            source.span,
        )
    dims: list[int] = []
    is_global = True
    vector_dim: int | None = None
    via_plate: T.FinSet | None = None
    for param, arg in zip(family.params, source.args, strict=False):
        if isinstance(arg, ast.ListArg):
            width = _vector_literal(ctx, family, param, arg)
            if width is not None:
                vector_dim = width
            continue
        if isinstance(arg, ast.Apply):
            ctx.error(
                "E0531",
                f"{family.name}'s {param.name} is a number or a bound value, not a call",
                arg.span,
                suggestion="only a Mixture takes family calls, in its list of components",
            )
            continue
        if isinstance(arg, ast.NumberLit):
            need = out_of_domain(param.domain, arg.value)
            if need is not None:
                ctx.error("E0313", f"{family.name}'s {param.name} {need}, not {arg.text}", arg.span)
            continue
        local = _local(ctx, arg)
        if local is None:
            continue
        fixed = _template_value(ctx, local)
        if fixed is not None:
            need = out_of_domain(param.domain, fixed)
            if need is not None:
                ctx.error(
                    "E0313",
                    f"{family.name}'s {param.name} {need}, not {fixed:g} (the value given for "
                    f"parameter '{local.name}')",
                    arg.span,
                )
        is_global = is_global and local.is_global
        arg_plate = T.plate_of(local.type)
        if arg_plate is not None and shape.via is not None:
            if via_plate is not None and not T.same(via_plate, arg_plate):
                ctx.error(
                    "E0518",
                    f"'{local.name}' is {T.describe(local.type)}, but via={shape.via.text} "
                    f"already reads a plate over {T.describe(via_plate)}",
                    arg.span,
                )
                continue
            via_plate = arg_plate
            local = Local(local.name, local.kind, T.with_plate(local.type, None), 0, local.span)
        elif arg_plate is not None:
            if plate is not None and not T.same(plate, arg_plate):
                ctx.error(
                    "E0518",
                    f"'{local.name}' is {T.describe(local.type)}, but the draw is one value per "
                    f"element of {T.describe(plate)}",
                    arg.span,
                )
                continue
            plate = arg_plate
        if isinstance(local.type, T.FinSet):
            ctx.error(
                "E0515",
                f"{family.name}'s {param.name} must be a continuous value, but '{local.name}' "
                f"is {T.describe(local.type)}",
                arg.span,
            )
            continue
        width = T.width(local.type)
        if (
            shape.event is not None
            and shape.width is not None
            and width is not None
            and width not in (1, shape.width)
        ):
            ctx.error(
                "E0505",
                f"over={shape.event.name.text} gives the draw width {shape.width}, but "
                f"'{local.name}' is {T.describe(local.type)}",
                arg.span,
            )
            continue
        if param.vector or (param.matrix and param.name == "loc"):
            vector_dim = width
        elif param.matrix:
            continue  # a (d, d) factor: its d is the value's width, checked at run time
        elif width is not None:
            dims.append(width)
    if shape.via is not None:
        is_global = False  # one draw per row, at that row's id
        _via_ids(ctx, shape.via, via_plate, family)
    if shape.event is not None:
        # the event axis: |K| values, arguments of width 1 broadcast to it
        dims = [shape.width] if shape.width is not None else []
        if family.multivariate:
            vector_dim = shape.width
    elif not shape.broken and _symmetric_needs_width(family, source, annotated):
        ctx.error(
            "E0504",
            f"{family.name}'s {', '.join(p.name for p in family.params if p.vector)} is given "
            "by a number, so the draw's width must be given too",
            source.span,
            suggestion=f"add [over=K] with K a finite set, or annotate it: "
            f"sample {var.text} : {_vector_space(family)} n <- ...",
        )
        return T.UNKNOWN, is_global
    ctx.typed(source, T.Arrow(T.UNKNOWN, T.UNKNOWN))
    if annotated is not None and not support_fits(family, annotated):
        what = (
            "; a continuous draw never becomes a finite-set value"
            if isinstance(annotated, T.FinSet)
            else ""
        )
        ctx.error(
            "E0505",
            f"'{var.text}' is annotated {T.describe(annotated)} but {family.name} draws "
            f"values in {support_words(family.support)}{what}",
            source.span,
        )
        return T.UNKNOWN, is_global
    if family.support == Domain.CORR_CHOLESKY and annotated is None:
        ctx.error(
            "E0504",
            f"{family.name} needs the dimension of its matrices from an annotation",
            source.span,
            suggestion=f"write sample {var.text} : Real d <- {family.name}(...)",
        )
        return T.UNKNOWN, is_global
    if (
        isinstance(annotated, T.Space)
        and annotated.dim is not None
        and family.multivariate
        and vector_dim is None
    ):
        vector_dim = annotated.dim  # `: Simplex 3 <- Dirichlet(1.0)`: symmetric, width 3
    else:
        _check_annotation_width(ctx, family, source, annotated, dims, vector_dim)
    value = _family_support_type(family, dims, vector_dim, annotated)
    if shape.event is not None and shape.width is None and annotated is None:
        kind = space_of(family.support)  # over a template's set: its width comes later
        value = T.Space(kind, None) if kind is not None else T.UNKNOWN
    if plate is not None:
        return T.with_plate(value, plate), True
    return value, is_global


def _vector_literal(ctx: Ctx, family: Family, param: Param, arg: ast.ListArg) -> int | None:
    """``[0.3, 0.7]`` for a vector parameter: numbers in the parameter's domain (on the
    simplex: non-negative and summing to 1). Its length, or None when it is wrong."""
    if not param.vector:
        ctx.error(
            "E0531",
            f"{family.name}'s {param.name} is one number per coordinate, not a list",
            arg.span,
            suggestion="give a number or a bound value",
        )
        return None
    numbers = [item for item in arg.items if isinstance(item, ast.NumberLit)]
    if len(numbers) != len(arg.items) or not numbers:
        ctx.error(
            "E0531",
            f"{family.name}'s {param.name} as a list is written with numbers only",
            arg.span,
            suggestion="pass a bound vector by name instead",
        )
        return None
    if param.domain == Domain.SIMPLEX:
        values = [n.value for n in numbers]
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            shown = ", ".join(n.text for n in numbers)
            ctx.error(
                "E0313",
                f"{family.name}'s {param.name} must be non-negative and sum to 1, not "
                f"[{shown}] (sum {sum(values):g})",
                arg.span,
            )
    else:
        for n in numbers:
            need = out_of_domain(param.domain, n.value)
            if need is not None:
                ctx.error("E0313", f"{family.name}'s {param.name} {need}, not {n.text}", n.span)
    return len(numbers)


def _mixture_value(
    state: _Program, source: ast.Apply, annotated: T.Type | None, var: ast.Name
) -> tuple[T.Type, bool]:
    """``Mixture(weights, [F1(...), ..., FK(...)])``: K weights on the simplex (a list
    of numbers or a bound simplex value) and K components of one support, each drawing
    one number per coordinate. The draw has the components' support and width."""
    ctx = state.ctx
    ctx.typed(source, T.Arrow(T.UNKNOWN, T.UNKNOWN))
    mixture = FAMILIES[MIXTURE]
    if len(source.args) != 2:
        ctx.error(
            "E0504",
            f"{mixture.signature()} takes 2 arguments, {len(source.args)} given",
            source.span,
        )
        for name in ast.argument_names(source.args):
            _local(ctx, name)
        return T.UNKNOWN, False
    weights, comps = source.args
    count = _mixture_weights(ctx, weights)
    if not isinstance(comps, ast.ListArg) or not comps.items:
        ctx.error(
            "E0531",
            "Mixture's components are a list of family calls: [Normal(0.0, 1.0), ...]",
            comps.span,
        )
        return T.UNKNOWN, False
    plate: T.FinSet | None = None
    values: list[tuple[Family, T.Type]] = []
    is_global = True
    ok = True
    for item in comps.items:
        family = _inline_family(ctx, item) if isinstance(item, ast.Apply) else None
        if not isinstance(item, ast.Apply) or family is None:
            if isinstance(item, ast.Apply) and _unknown_family(ctx, item):
                ok = False
                continue
            ctx.error(
                "E0531",
                "each of Mixture's components is a family call such as Normal(0.0, 1.0)",
                item.span,
            )
            ok = False
            continue
        problem = mixture_component_problem(family)
        if problem is not None:
            ctx.error("E0532", f"{family.name} cannot be a Mixture component: {problem}", item.span)
            ok = False
            continue
        value, glob = _family_value(state, family, item, None, var, _Shape(None, None, None, None))
        is_global = is_global and glob
        arg_plate = T.plate_of(value)
        if arg_plate is not None:
            if plate is not None and not T.same(plate, arg_plate):
                ctx.error(
                    "E0518",
                    f"Mixture's components are plates over {T.describe(plate)} and "
                    f"{T.describe(arg_plate)}",
                    item.span,
                )
                ok = False
            plate = arg_plate
        values.append((family, value))
    if count is not None and count != len(comps.items):
        ctx.error(
            "E0531",
            f"Mixture has {count} weights for {len(comps.items)} components",
            source.span,
        )
    supports = {f.support for f, _ in values}
    if len(supports) > 1:
        shown = ", ".join(f"{f.name} draws {support_words(f.support)}" for f, _ in values)
        ctx.error(
            "E0532",
            f"Mixture's components must share one support: {shown}",
            comps.span,
            suggestion="mix components of one family, or of families with the same support",
        )
        return T.UNKNOWN, is_global
    if not ok or not values:
        return T.UNKNOWN, is_global
    first = values[0][0]
    if isinstance(annotated, T.FinSet) and first.support not in (Domain.FINITE, Domain.BINARY):
        plate, annotated = annotated, None  # one draw per element of the set
    widths = {w for _, v in values if (w := T.width(v)) is not None and w > 1}
    if len(widths) > 1:
        ctx.error(
            "E0511",
            f"Mixture's components give draws of widths {sorted(widths)}",
            comps.span,
        )
        return T.UNKNOWN, is_global
    if annotated is not None and not support_fits(first, annotated):
        ctx.error(
            "E0505",
            f"'{var.text}' is annotated {T.describe(annotated)} but the Mixture draws values "
            f"in {support_words(first.support)}",
            source.span,
        )
        return T.UNKNOWN, is_global
    value = _family_support_type(first, list(widths), None, annotated)
    if plate is not None:
        return T.with_plate(value, plate), True
    return value, is_global


def _mixture_weights(
    ctx: Ctx, weights: ast.Name | ast.NumberLit | ast.ListArg | ast.Apply
) -> int | None:
    """The number of a Mixture's weights, or None when it is not known."""
    mixture = FAMILIES[MIXTURE]
    if isinstance(weights, ast.ListArg):
        return _vector_literal(ctx, mixture, mixture.params[0], weights)
    if isinstance(weights, ast.Apply):
        ctx.error("E0531", "Mixture's weights are a list of numbers or a bound value", weights.span)
        return None
    if isinstance(weights, ast.NumberLit):
        ctx.error(
            "E0531",
            f"Mixture's weights are a vector on the simplex, not the number {weights.text}",
            weights.span,
            suggestion="write them as a list: [0.3, 0.7]",
        )
        return None
    local = _local(ctx, weights)
    if local is None or isinstance(local.type, T.Unknown):
        return None
    if not (isinstance(local.type, T.Space) and local.type.kind == SPACE_BY_DOMAIN[Domain.SIMPLEX]):
        ctx.error(
            "E0531",
            f"Mixture's weights must be a value on the simplex, but '{local.name}' is "
            f"{T.describe(local.type)}",
            weights.span,
            suggestion="draw them from a Dirichlet, or write them as a list",
        )
        return None
    return T.width(local.type)


def _check_annotation_width(
    ctx: Ctx,
    family: Family,
    source: ast.Apply,
    annotated: T.Type | None,
    dims: list[int],
    vector_dim: int | None,
) -> None:
    """An annotation must agree with the width the arguments give the draw."""
    if annotated is None or isinstance(annotated, T.Unknown):
        return
    given = T.size_of(annotated) if isinstance(annotated, T.FinSet) else T.width(annotated)
    implied = vector_dim if vector_dim is not None else (max(dims) if dims else None)
    if given is None or implied is None or implied == 1 and vector_dim is None:
        return
    if given != implied:
        ctx.error(
            "E0505",
            f"the draw is annotated {T.describe(annotated)} but {family.name}'s arguments "
            f"give it width {implied}",
            source.span,
        )


class _Shape:
    """What a draw's options (and its annotation, when the options name its sets)
    say about its shape: the event set (``over``), the plate (``iid_over``), the ids
    of a per-row lookup (``via``) and the annotation left to type the value."""

    def __init__(
        self,
        event: SetOption | None,
        iid: T.FinSet | None,
        via: ast.Name | None,
        annotated: T.Type | None,
        broken: bool = False,
    ) -> None:
        self.event, self.iid, self.via, self.annotated = event, iid, via, annotated
        self.broken = broken  # an option could not be read (already reported)
        # None for a template's set whose size is not given: known at instantiation
        self.width = T.size_of(event.type) if event is not None else 1

    @classmethod
    def of(
        cls, state: _Program, family: Family, opts: StepOptions, annotated: T.Type | None
    ) -> _Shape:
        ctx = state.ctx
        event = _one(ctx, "over", opts.over)
        iid_set = _one(ctx, "iid_over", opts.iid_over)
        via = _one(ctx, "via", opts.via)
        iid = iid_set.type if iid_set is not None else None
        if event is not None and (
            family.support in (Domain.FINITE, Domain.BINARY)
            or any(p.matrix for p in family.params)
            or family.inline_only
        ):
            what = "draws ids" if family.discrete else "takes its width from its matrix"
            ctx.error(
                "E0304",
                f"over= names the event axis of a draw, but {family.name} {what}",
                opts.span("over") or event.name.span,
                suggestion="remove over=; a plate is iid_over=K",
            )
            event = None
        if via is not None and iid is not None:
            ctx.error(
                "E0304",
                f"via={via.text} gives one draw per row, iid_over={T.show(iid)} one per element "
                f"of {T.show(iid)}: a draw takes one of them",
                opts.span("via") or via.span,
            )
            via = None
        if (event is not None or iid is not None) and isinstance(annotated, T.FinSet):
            named = [s for s in (iid, event.type if event is not None else None) if s is not None]
            if family.support not in (Domain.FINITE, Domain.BINARY) and not any(
                T.same(annotated, s) for s in named
            ):
                shown = " and ".join(T.describe(s) for s in named)
                ctx.error(
                    "E0505",
                    f"the draw is annotated {T.describe(annotated)}, but its options name {shown}",
                    opts.spans[0][1],
                    suggestion="annotate it with one of the sets its options name, or drop "
                    "the annotation",
                )
            annotated = None  # the options are authoritative (the gallery's rule)
        elif via is not None and isinstance(annotated, T.FinSet) and T.same(annotated, state.dom):
            annotated = None  # `observe y : Rows <- ... [via=idx]`: one value per row
        return cls(event, iid, via, annotated, opts.broken)


def _one(ctx: Ctx, key: str, given: tuple[SetOption, ...] | tuple[ast.Name, ...] | None) -> Any:
    """The one finite set (or ids) a draw's option names; a list is E0305."""
    if not given:
        return None
    if len(given) > 1:
        first = given[0]
        span = first.name.span if isinstance(first, SetOption) else first.span
        ctx.error(
            "E0305",
            f"{key} of a draw names one "
            f"{'finite set' if key != 'via' else 'array of ids'}, not {len(given)}",
            span,
            suggestion="a list is read by marginalize blocks only",
        )
        return None
    return given[0]


def _via_ids(ctx: Ctx, ids: ast.Name, plate: T.FinSet | None, family: Family) -> None:
    """``[via=idx]``: ``idx`` holds one id of the plate per row (host data, or a
    finite-set value of the plate's set)."""
    if ids.missing:
        return
    if plate is None:
        ctx.error(
            "E0304",
            f"via={ids.text} reads plate arguments at per-row ids, but no argument of "
            f"{family.name} is a plate",
            ids.span,
            suggestion="remove via=, or pass a plate (sample v : K <- ...) as an argument",
        )
        return
    local = ctx.locals.get(ids.text)
    host = T.FinSet(plate.size, plate.elements, plate.name)
    if local is None:  # host data of ids into the plate, range-checked at run time
        ctx.locals[ids.text] = Local(ids.text, "host", host, ctx.unit_index, ids.span)
        ctx.ref(ids, ids.text, "local", is_decl=True)
        ctx.typed(ids, host)
        return
    ctx.ref(ids, ids.text, "local", is_decl=local.kind == "host")
    ctx.typed(ids, local.type)
    if local.kind == "host" or isinstance(local.type, T.Unknown):
        return
    if not (isinstance(local.type, T.FinSet) and T.same(local.type, plate)):
        ctx.error(
            "E0517",
            f"via={ids.text}: '{ids.text}' is {T.describe(local.type)}, but the draw's plate "
            f"arguments need ids of {T.describe(plate)} (or host data)",
            ids.span,
        )


def _symmetric_needs_width(family: Family, source: ast.Apply, annotated: T.Type | None) -> bool:
    """A vector parameter given by numbers only (``Dirichlet(1.0)``) has no width of its
    own: it needs ``over=`` or an annotation of a space."""
    vector = [
        arg
        for param, arg in zip(family.params, source.args, strict=False)
        if param.vector or (param.matrix and param.name == "loc")
    ]
    if not vector or not all(isinstance(a, ast.NumberLit) for a in vector):
        return False
    return not isinstance(annotated, T.Space) and not (
        isinstance(annotated, T.FinSet) and family.support == Domain.FINITE
    )


def _vector_space(family: Family) -> str:
    return SPACE_BY_DOMAIN.get(family.support, "Real")


def _family_support_type(
    family: Family, dims: list[int], vector_dim: int | None, annotated: T.Type | None
) -> T.Type:
    if annotated is not None:
        return annotated
    if family.support == Domain.FINITE:
        return T.FinSet(vector_dim) if vector_dim else T.UNKNOWN
    if family.support == Domain.BINARY:
        return T.FinSet(2)
    if family.support == Domain.SIMPLEX:
        return T.Space(SPACE_BY_DOMAIN[Domain.SIMPLEX], vector_dim) if vector_dim else T.UNKNOWN
    if family.multivariate:
        return T.real(vector_dim) if vector_dim else T.UNKNOWN
    dim = max(dims) if dims else 1
    kind = space_of(family.support)
    return T.Space(kind, dim) if kind is not None else T.UNKNOWN


def _callee(expr: ast.Expr) -> str:
    if isinstance(expr, ast.Ref):
        return f"'{expr.name.text}'"
    return "the morphism"


# -------------------------------------------------------------------- arithmetic


def _arith(state: _Program, node: ast.Arith) -> T.Type:
    t = _arith_type(state, node)
    state.ctx.typed(node, t)
    return t


def _arith_type(state: _Program, node: ast.Arith) -> T.Type:
    ctx = state.ctx
    if isinstance(node, ast.Num):
        return T.real(1)
    if isinstance(node, ast.Var):
        return _arith_var(ctx, node.name)
    if isinstance(node, ast.Neg):
        return _arith(state, node.operand)
    if isinstance(node, ast.BinOp):
        left, right = _arith(state, node.left), _arith(state, node.right)
        return _broadcast(ctx, node, left, right)
    if isinstance(node, ast.Index):
        return _index(state, node)
    # a call
    fn = node.fn.text
    args = [_arith(state, a) for a in node.args]
    if fn not in ARITH_FUNCTIONS:
        guess = did_you_mean(fn, ARITH_FUNCTIONS)
        ctx.error(
            "E0510",
            f"unknown function '{fn}'",
            node.fn.span,
            suggestion=f"did you mean '{guess}'?"
            if guess
            else f"functions: {', '.join(ARITH_FUNCTIONS)}",
            replacement=guess,
        )
        return T.UNKNOWN
    if len(args) != ARITH_FUNCTIONS[fn]:
        ctx.error(
            "E0510", f"{fn} takes {ARITH_FUNCTIONS[fn]} argument(s), {len(args)} given", node.span
        )
        return T.UNKNOWN
    if fn in RECURRENCES:
        return _recurrence(state, node, args)
    if fn in REDUCTIONS:
        return T.with_plate(T.real(1), T.plate_of(args[0]))
    return _as_real(args[0])


def _index(state: _Program, node: ast.Index) -> T.Type:
    """``beta[idx]``: gathers one entry of a plate per row; ``idx`` is host data of ids
    or a finite-set value of the plate's set. The result has no plate: it is per row."""
    ctx = state.ctx
    base, index = node.base, node.index
    if base.missing or index.missing:
        return T.UNKNOWN
    if base.text not in ctx.locals:
        found = ctx.lookup(base.text)
        if isinstance(found, SymbolInfo) and found.relation:
            return _relation_row(state, node, found)
    local = _local(ctx, base)
    if local is None:
        return T.UNKNOWN
    plate = T.plate_of(local.type)
    if plate is None and not isinstance(local.type, T.Unknown):
        ctx.error(
            "E0517",
            f"'{base.text}' is {T.describe(local.type)}, not a plate, so it cannot be indexed",
            node.span,
            suggestion=f"draw it as a plate: sample {base.text} : K <- Family(...)",
        )
        return T.UNKNOWN
    if _out_of_scope(ctx, index):
        return T.UNKNOWN
    if not _ids_fit(ctx, index, plate):
        ctx.error(
            "E0517",
            f"'{index.text}' is {T.describe(ctx.locals[index.text].type)}; indexing "
            f"{base.text} needs ids of "
            f"{T.describe(plate) if plate is not None else 'its plate'} (or host data)",
            index.span,
        )
        return T.UNKNOWN
    assert isinstance(local.type, T.Space | T.Unknown)
    return T.with_plate(local.type, None) if isinstance(local.type, T.Space) else T.UNKNOWN


def _recurrence(state: _Program, node: ast.Call, args: list[T.Type]) -> T.Type:
    """``ar_filter(phi, e)``: ``e`` a plate over ``K``, ``phi`` one global number; the
    value is a plate over ``K`` of ``e``'s width (the recursion runs over K's elements)."""
    ctx = state.ctx
    coef, series = args
    if isinstance(coef, T.Unknown) or isinstance(series, T.Unknown):
        return T.UNKNOWN
    fn = node.fn.text
    if T.plate_of(series) is None:
        ctx.error(
            "E0510",
            f"{fn}(phi, e) runs over the elements of a plate, but e is {T.describe(series)}",
            node.args[1].span,
            suggestion="draw the innovations as a plate: sample e : K <- Normal(0.0, 1.0)",
        )
        return T.UNKNOWN
    if (
        T.plate_of(coef) is not None
        or T.width(coef) not in (1, None)
        or not _arith_is_global(ctx, node.args[0])
    ):
        ctx.error(
            "E0510",
            f"{fn}(phi, e) needs one global coefficient phi, not {T.describe(coef)}",
            node.args[0].span,
        )
        return T.UNKNOWN
    return _as_real(series)


def _ids_fit(ctx: Ctx, index: ast.Name, of: T.FinSet | None) -> bool:
    """Resolve the ids of ``v[index]`` and say whether they are ids of ``of``: a free
    name is host data of ids of ``of`` (range-checked at run time); a bound name must
    be host data or a finite-set value of ``of``."""
    ids = ctx.locals.get(index.text)
    if ids is None:
        host: T.Type = T.FinSet(of.size, of.elements, of.name) if of else T.UNKNOWN
        ctx.locals[index.text] = Local(index.text, "host", host, ctx.unit_index, index.span)
        ctx.ref(index, index.text, "local", is_decl=True)
        ctx.typed(index, host)
        return True
    ctx.ref(index, index.text, "local", is_decl=ids.kind == "host")
    ctx.typed(index, ids.type)
    return (
        ids.kind == "host"
        or isinstance(ids.type, T.Unknown)
        or (isinstance(ids.type, T.FinSet) and of is not None and T.same(ids.type, of))
    )


def _relation_row(state: _Program, node: ast.Index, found: SymbolInfo) -> T.Type:
    """``rel[ids]`` for a relation ``rel : A -> B`` between finite sets: row ``ids`` of its
    matrix (in the algebra's carrier), a ``Real |B|`` per row; ``ids`` are ids of ``A``
    (host data or a finite-set value of ``A``)."""
    ctx = state.ctx
    base, index = node.base, node.index
    ctx.ref(base, base.text, "global")
    arrow = found.arrow()
    assert arrow is not None
    ctx.typed(base, arrow)
    dom, cod = arrow.dom, arrow.cod
    if not (isinstance(dom, T.FinSet) and isinstance(cod, T.FinSet)):
        ctx.error(
            "E0517",
            f"'{base.text}' is a relation {T.describe(dom)} -> {T.describe(cod)}; reading its "
            "rows needs a relation between two finite sets",
            node.span,
        )
        return T.UNKNOWN
    if not _ids_fit(ctx, index, dom):
        ctx.error(
            "E0517",
            f"'{index.text}' is {T.describe(ctx.locals[index.text].type)}; the rows of "
            f"{base.text} are indexed by ids of {T.describe(dom)} (or host data)",
            index.span,
        )
        return T.UNKNOWN
    return T.real(cod.size)


def _arith_var(ctx: Ctx, name: ast.Name) -> T.Type:
    if name.missing or _out_of_scope(ctx, name):
        return T.UNKNOWN
    local = ctx.locals.get(name.text)
    if local is not None:
        ctx.ref(name, name.text, "local", is_decl=local.kind == "host")
        if local.kind == "marginal" and name.text in ctx.binary_marginals:
            ctx.typed(name, T.real(1))
            return T.real(1)  # a summed-out Bernoulli value is the number 0 or 1
        if isinstance(local.type, T.FinSet):
            ctx.error(
                "E0512",
                f"'{name.text}' is {T.describe(local.type)}, a finite-set value, and cannot be "
                "used in arithmetic",
                name.span,
            )
            return T.UNKNOWN
        ctx.typed(name, local.type)
        return local.type
    found = ctx.lookup(name.text)
    if isinstance(found, SymbolInfo):
        ctx.ref(name, name.text, "global")
        ctx.error(
            "E0104",
            f"'{name.text}' is a {found.kind}, not a value; arithmetic works on bound values",
            name.span,
        )
        return T.UNKNOWN
    # A free name no step binds is host data, supplied with the observations.
    host = T.real(None)
    ctx.locals[name.text] = Local(name.text, "host", host, ctx.unit_index, name.span)
    ctx.ref(name, name.text, "local", is_decl=True)
    ctx.typed(name, host)
    return host


def _arith_is_global(ctx: Ctx, node: ast.Arith) -> bool:
    """A value computed only from numbers and global values is itself global."""
    if isinstance(node, ast.Num):
        return True
    if isinstance(node, ast.Var):
        local = ctx.locals.get(node.name.text)
        return local is not None and local.is_global
    if isinstance(node, ast.Neg):
        return _arith_is_global(ctx, node.operand)
    if isinstance(node, ast.BinOp):
        return _arith_is_global(ctx, node.left) and _arith_is_global(ctx, node.right)
    if isinstance(node, ast.Index):
        base, ids = ctx.locals.get(node.base.text), ctx.locals.get(node.index.text)
        base_global = base.is_global if base is not None else True  # a relation's matrix
        return base_global and ids is not None and ids.is_global
    return all(_arith_is_global(ctx, a) for a in node.args)


def _as_real(t: T.Type) -> T.Type:
    if isinstance(t, T.Space):
        return T.with_plate(T.real(t.dim), t.plate)
    w = T.width(t)
    return T.real(w) if w is not None else T.UNKNOWN


def _broadcast(ctx: Ctx, node: ast.BinOp, left: T.Type, right: T.Type) -> T.Type:
    if isinstance(left, T.Unknown) or isinstance(right, T.Unknown):
        return T.UNKNOWN
    pa, pb = T.plate_of(left), T.plate_of(right)
    if pa is not None and pb is not None and not T.same(pa, pb):
        ctx.error(
            "E0518",
            f"'{node.op}' of {T.describe(left)} and {T.describe(right)}: plates over "
            "different sets",
            node.span,
        )
        return T.UNKNOWN
    return T.with_plate(_broadcast_width(ctx, node, left, right), pa or pb)


def _broadcast_width(ctx: Ctx, node: ast.BinOp, left: T.Type, right: T.Type) -> T.Type:
    a, b = T.width(left), T.width(right)
    if a is None or b is None:
        # A width known only at run time (host data) wins over a width of 1, which
        # broadcasts to anything; any other known width is the result's.
        known = a if b is None else b
        return T.real(None if known == 1 else known)
    if a == b or b == 1:
        return T.real(a)
    if a == 1:
        return T.real(b)
    ctx.error(
        "E0511",
        f"'{node.op}' of {T.describe(left)} and {T.describe(right)}: dimensions {a} and {b} differ",
        node.span,
    )
    return T.UNKNOWN


# ------------------------------------------------------------------------ return


def _return(state: _Program, node: ast.ReturnStep) -> None:
    ctx = state.ctx
    if state.returned_at is not None:
        return
    if _forward_return(state, node):
        return
    locals_ = [_returned(ctx, name) for name in node.vars]
    if any(v is None for v in locals_):
        return
    given = T.product([v.type for v in locals_ if v is not None])
    state.returned = given
    if _plate_program(state.dom, state.cod):
        return  # a plate program may return any bound value (docs/language.md, 10.7)
    if _plate_of_codomain(state.dom, state.cod, given):
        return  # one value of the codomain per element of the returned plate
    if not T.assignable(given, state.cod):
        ctx.error(
            "E0508",
            f"the program returns {T.describe(given)} but is declared to give {T.describe(state.cod)}",
            node.span,
            suggestion=_return_suggestion(state.dom, state.cod, given, node.vars),
        )


def _return_suggestion(
    dom: T.Type, cod: T.Type, given: T.Type, names: Sequence[ast.Name]
) -> str | None:
    """How to declare a program that returns a plate value (docs/language.md, 10.7)."""
    plate = T.plate_of(given)
    if plate is None:
        return None
    element = T.show(T.with_plate(given, None))
    if isinstance(dom, T.FinSet):
        return (
            f"a program over the finite set {T.show(dom)} returns one value of its "
            f"codomain per element of the plate: declare the codomain {element}"
        )
    name = names[0].text if len(names) == 1 else "v"
    return (
        f"only a program over a finite set returns a plate (`K -> {element}`); "
        f"from {T.show(dom)} return one value per row, such as `{name}[ids]` bound by a let"
    )


# ---------------------------------------------------------------- marginalisation
# docs/language.md, "Marginalisation": `marginalize c : K <- Categorical(p)` sums the
# discrete latent c out of the deeper-indented steps after it (its body), exactly.


def _marginalize(state: _Program, node: ast.MarginalizeStep, depth: int) -> None:
    ctx = state.ctx
    if state.blocks:
        ctx.error(
            "E0541",
            "a marginalize block inside another is not supported yet",
            node.span,
            suggestion="sum both latents out with one block over their product set",
        )
        return
    grouped = _marginal_options(state, node)
    annotated = resolve_type(ctx, node.annotation) if node.annotation is not None else None
    source = node.source
    value: T.Type = T.UNKNOWN
    binary = False
    prior_global = False
    family = _inline_family(ctx, source)
    if family is not None:
        assert isinstance(source, ast.Apply)
        if family.support not in (Domain.FINITE, Domain.BINARY):
            ctx.error(
                "E0540",
                f"marginalize sums a discrete latent out exactly, but {family.name} draws "
                f"values in {support_words(family.support)}",
                source.span,
                suggestion=f"draw it with `sample {node.var.text} <- ...`, or marginalize a "
                "Categorical or Bernoulli latent",
            )
        else:
            shape = _Shape(None, None, None, annotated)  # its options are the block's
            value, prior_global = _family_value(state, family, source, annotated, node.var, shape)
            binary = family.support == Domain.BINARY
    elif _unknown_family(ctx, source):
        pass
    else:
        value, prior_global = _marginal_kernel(state, node)
    if annotated is not None and not isinstance(annotated, T.Unknown):
        if not isinstance(annotated, T.FinSet):
            ctx.error(
                "E0540",
                f"'{node.var.text}' is annotated {T.describe(annotated)}; a marginalized "
                "latent takes values in a finite set",
                node.annotation.span if node.annotation is not None else node.span,
            )
        elif not isinstance(value, T.Unknown) and not T.assignable(value, annotated):
            ctx.error(
                "E0505",
                f"'{node.var.text}' is annotated {T.describe(annotated)} but its prior gives "
                f"{T.describe(value)}",
                node.annotation.span if node.annotation is not None else node.span,
            )
        else:
            value = annotated
    if grouped is not None and not prior_global:
        ctx.error(
            "E0543",
            f"with over={grouped}, one latent is shared by the rows of each element, so its "
            "prior must be the same for every row (numbers and global values only)",
            source.span,
        )
    if not isinstance(value, T.FinSet | T.Unknown):
        value = T.UNKNOWN
    _bind(ctx, node.var, "marginal", value)
    if binary:
        ctx.binary_marginals.add(node.var.text)
    block = _Block(node.var, depth, binary)
    block.unit_index = ctx.unit_index
    state.blocks.append(block)


def _marginal_kernel(state: _Program, node: ast.MarginalizeStep) -> tuple[T.Type, bool]:
    """A kernel morphism as the prior: ``marginalize z <- transition(h)``."""
    ctx = state.ctx
    source = node.source
    callee = source.callee if isinstance(source, ast.Apply) else source
    info = None
    if isinstance(callee, ast.Ref) and not callee.name.missing:
        found = ctx.lookup(callee.name.text)
        info = found if isinstance(found, SymbolInfo) else None
    if info is not None and (info.kind != "morphism" or info.role != "kernel"):
        ctx.ref(callee.name, callee.name.text, "global")  # type: ignore[union-attr]
        ctx.error(
            "E0540",
            f"the prior of a marginalized latent must be a kernel or Categorical/Bernoulli; "
            f"'{callee.name.text}' is a {info.kind}"  # type: ignore[union-attr]
            + (f" with role={info.role}" if info.role else ""),
            source.span,
            suggestion="declare it [role=kernel] between finite sets",
        )
        return T.UNKNOWN, False
    if info is None and isinstance(callee, ast.Ref):
        type_of(ctx, callee)  # reports the unknown name
        return T.UNKNOWN, False
    if info is None:
        ctx.error(
            "E0540",
            "the prior of a marginalized latent must be a kernel morphism or "
            "Categorical/Bernoulli, not a composite expression",
            source.span,
            suggestion="name the kernel and apply it: marginalize z <- kernel(x)",
        )
        return T.UNKNOWN, False
    sample = ast.SampleStep(node.span, node.var, None, source, False)
    arrow = info.arrow()
    if arrow is not None and not isinstance(arrow.cod, T.FinSet | T.Unknown):
        ctx.ref(callee.name, callee.name.text, "global")  # type: ignore[union-attr]
        ctx.error(
            "E0540",
            f"marginalize sums a discrete latent out exactly, but '{callee.name.text}' gives "  # type: ignore[union-attr]
            f"{T.describe(arrow.cod)}",
            source.span,
            suggestion="marginalize a latent in a finite set",
        )
        return T.UNKNOWN, False
    value, is_global = _sample_value(state, sample)
    return value, is_global


def _marginal_options(state: _Program, node: ast.MarginalizeStep) -> str | None:
    """Check ``[reduction=logsumexp, over=G, via=ids]`` (spelled and typed by the step
    options' table, ``semantic/options.py``); the name of the ``over`` set, if any."""
    ctx = state.ctx
    opts = check_step_options(ctx, node.options, "marginalize")
    if opts.reduction is not None and opts.reduction != DEFAULT_MARGINAL_REDUCTION:
        span = opts.span("reduction") or node.span
        ctx.error(
            "E0543",
            f"reduction '{opts.reduction}' is not a marginal: a marginalize block sums its "
            "latent out exactly, in log space",
            span,
            suggestion=f"write reduction={DEFAULT_MARGINAL_REDUCTION}",
        )
    over = opts.over[0] if opts.over else None
    if opts.over is not None and len(opts.over) > 1:
        ctx.error(
            "E0543",
            "a marginalize block sums one latent out: over takes one finite set",
            opts.span("over") or node.span,
        )
    via = opts.via[0] if opts.via else None
    if opts.via is not None and len(opts.via) > 1:
        ctx.error(
            "E0543",
            "via takes the one host-data name of the rows' ids",
            opts.span("via") or node.span,
        )
    if over is not None and via is None and not opts.given("via"):
        ctx.error(
            "E0543",
            f"over={over.name.text} needs the ids of each row's element",
            opts.span("over") or node.span,
            suggestion="add via=ids, host data of one id per row",
        )
    if via is not None and over is None and not opts.given("over"):
        ctx.error(
            "E0543",
            "via=ids names the elements of an over set; this block has none",
            opts.span("via") or node.span,
            suggestion="add over=G, or remove via",
        )
    elif via is not None and over is not None and not _out_of_scope(ctx, via):
        known = ctx.locals.get(via.text)
        group = over.type
        if known is None:
            ctx.locals[via.text] = Local(via.text, "host", group, ctx.unit_index, via.span)
            ctx.ref(via, via.text, "local", is_decl=True)
            ctx.typed(via, group)
        elif known.kind != "host":
            ctx.ref(via, via.text, "local")
            ctx.error(
                "E0543",
                f"via={via.text} must be host data of ids, but '{via.text}' is bound in this "
                "program",
                via.span,
            )
        else:
            ctx.ref(via, via.text, "local")
    return over.name.text if over is not None else None


def _allowed_in_body(state: _Program, node: ast.Node) -> bool:
    """Whether a step may stand in a marginalize body (reporting it when not)."""
    block = state.blocks[-1]
    var = block.var.text
    if isinstance(node, ast.SampleStep) and not node.observed:
        state.ctx.error(
            "E0541",
            f"'{node.var.text}' is drawn inside the marginalize block of '{var}': a latent "
            "drawn there cannot be summed out exactly",
            node.span,
            suggestion="draw it before the block, or observe it",
        )
        return False
    if isinstance(node, ast.ReturnStep):
        state.ctx.error(
            "E0541",
            f"return inside the marginalize block of '{var}'",
            node.span,
            suggestion="return after the block (dedent it)",
        )
        return False
    return True


def _in_body(state: _Program, name: ast.Name) -> None:
    if state.blocks and not name.missing:
        state.blocks[-1].bound.append(name.text)


def _close_block(state: _Program) -> None:
    block = state.blocks.pop()
    ctx = state.ctx
    var = block.var.text
    if block.steps == 0:
        here, ctx.unit_index = ctx.unit_index, block.unit_index
        ctx.error(
            "E0544",
            f"the marginalize block of '{var}' has no body: nothing depends on it",
            block.var.span,
            suggestion="indent the steps that depend on it under the block",
        )
        ctx.unit_index = here
    if not block.var.missing:
        ctx.out_of_scope[var] = (
            "E0542",
            f"'{var}' is summed out by its marginalize block; it has no value after the block",
        )
    for name in block.bound:
        ctx.out_of_scope[name] = (
            "E0542",
            f"'{name}' depends on '{var}', which its marginalize block sums out; it has no "
            "value after the block",
        )
    ctx.binary_marginals.discard(var)
    state.closed = block


def _out_of_scope(ctx: Ctx, name: ast.Name) -> bool:
    """Report a use of a value that is bound but not in scope here (E0542, E0545)."""
    why = ctx.out_of_scope.get(name.text)
    if why is None:
        return False
    ctx.ref(name, name.text, "local")
    code, message = why
    ctx.error(code, message, name.span)
    return True


def _returned(ctx: Ctx, name: ast.Name) -> Local | None:
    """A returned variable: a forward scan's value may be returned (only that)."""
    local = ctx.locals.get(name.text)
    if local is not None and local.kind == "forward":
        ctx.ref(name, name.text, "local")
        ctx.typed(name, local.type)
        return local
    return _local(ctx, name)


def _forward_return(state: _Program, node: ast.ReturnStep) -> bool:
    """``return z`` right after the block summing ``z`` out: a forward cell
    ``A * H -> H`` (its scan carries the distribution of the state; see the docs)."""
    block = state.closed
    if block is None or node.is_tuple or len(node.vars) != 1:
        return False
    name = node.vars[0]
    if name.text != block.var.text or block.depth != 0:
        return False
    ctx = state.ctx
    local = ctx.locals.get(name.text)
    split = T.scan_split(state.dom, state.cod)
    ctx.ref(name, name.text, "local")
    if (
        local is None
        or split is None
        or not isinstance(state.cod, T.FinSet)
        or not T.same(local.type, state.cod)
    ):
        ctx.error(
            "E0542",
            f"'{name.text}' is summed out by its marginalize block; only a scan cell "
            "A * H -> H may return the state it sums out",
            name.span,
            suggestion=f"declare the program A * {T.show(local.type) if local else 'H'} -> "
            f"{T.show(local.type) if local else 'H'} and use it as scan(...)",
        )
        return True
    state.forward = True
    state.returned = local.type
    return True
