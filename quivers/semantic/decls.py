"""Checking top-level declarations: objects, morphisms (roles, options, families),
named expressions, exports and the composition algebra (spec sections 3-5)."""

from __future__ import annotations

import difflib

from quivers.core.families import FAMILIES, Domain, Family, out_of_domain
from quivers.core.vocabulary import (
    ALGEBRAS,
    DEFAULT_ROLE,
    INIT_SCHEMES,
    OPTIONS,
    PARAM_SOURCES,
    ROLES,
    SPACE_BY_DOMAIN,
    SPACE_KINDS,
    param_source_forms,
    spaces_holding,
)
from quivers.semantic import types as T
from quivers.semantic.context import Ctx
from quivers.semantic.exprs import resolve_type, type_of
from quivers.semantic.model import Deferred, SymbolInfo
from quivers.syntax import ast


def did_you_mean(word: str, candidates: object) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)  # type: ignore[call-overload]
    return matches[0] if matches else None


def check_declaration(ctx: Ctx, node: ast.Node) -> None:
    if isinstance(node, ast.ObjectDecl):
        _object(ctx, node)
    elif isinstance(node, ast.MorphismDecl):
        _morphism(ctx, node)
    elif isinstance(node, ast.LetDecl):
        declare(ctx, node.name)
        arrow = type_of(ctx, node.expr)
        ctx.result.symbol = SymbolInfo(
            "let",
            arrow if arrow is not None else T.Arrow(T.UNKNOWN, T.UNKNOWN),
            relation=arrow is not None and _is_relation(ctx, node.expr),
        )
    elif isinstance(node, ast.ExportDecl):
        _export(ctx, node)
    elif isinstance(node, ast.CompositionDecl):
        _composition(ctx, node)
    elif isinstance(node, ast.DeductionDecl):
        from quivers.semantic.deductions import check_deduction

        check_deduction(ctx, node)


def declare(ctx: Ctx, name: ast.Name) -> None:
    """Record a declaration, reporting a duplicate or a clash with a family name."""
    if name.missing:
        return
    ctx.result.declares = name.text
    ctx.ref(name, name.text, "global", is_decl=True)
    if name.text in FAMILIES:
        ctx.error(
            "E0105",
            f"'{name.text}' is a built-in family and cannot be declared",
            name.span,
            suggestion="choose another name",
        )
    if ctx.lookup(name.text) not in (None, "later"):
        ctx.error(
            "E0103",
            f"'{name.text}' is already declared",
            name.span,
            deferred=Deferred("line", name.text),
        )


def _object(ctx: Ctx, node: ast.ObjectDecl) -> None:
    declare(ctx, node.name)
    t = resolve_type(ctx, node.type)
    ctx.result.symbol = SymbolInfo("object", T.renamed(t, node.name.text))


# ------------------------------------------------------------------- morphisms


def _morphism(ctx: Ctx, node: ast.MorphismDecl) -> None:
    declare(ctx, node.name)
    dom, cod = resolve_type(ctx, node.dom), resolve_type(ctx, node.cod)
    options = _collect_options(ctx, node)
    role = _role(ctx, node, options)
    family = _family(ctx, node, role, dom, cod)
    replicate = _validate_options(ctx, options, role, family)
    if role == "kernel" and family is not None and node.family is not None:
        _check_fixed(ctx, node, family, options)
    if role is not None:
        _check_role_types(ctx, node, role, family, dom, cod)
    written = tuple((o.name.text, option_text(o.value)) for o in node.options)
    ctx.result.symbol = SymbolInfo(
        "morphism",
        T.Arrow(dom, cod),
        role=role,
        family=family.name if family is not None else None,
        replicate=replicate,
        options=written,
        relation=(
            isinstance(dom, T.FinSet)
            and isinstance(cod, T.FinSet)
            and (role == "latent" or (role in ("kernel", "observed") and family is None))
        ),
    )


def _is_relation(ctx: Ctx, expr: ast.Expr) -> bool:
    """Whether an expression composes relations only (so it has a matrix)."""
    if isinstance(expr, ast.Ref):
        found = ctx.lookup(expr.name.text)
        return isinstance(found, SymbolInfo) and found.relation
    if isinstance(expr, ast.Compose):
        return _is_relation(ctx, expr.first) and _is_relation(ctx, expr.second)
    if isinstance(expr, ast.TensorExpr):
        return _is_relation(ctx, expr.left) and _is_relation(ctx, expr.right)
    if isinstance(expr, ast.Fan):
        return all(_is_relation(ctx, p) for p in expr.parts)
    if isinstance(expr, ast.Repeat | ast.Stack):
        return _is_relation(ctx, expr.body)
    if isinstance(expr, ast.IdentityExpr):
        arrow = ctx.result.types.get(id(expr))
        return isinstance(arrow, T.Arrow) and isinstance(arrow.dom, T.FinSet)
    return False


def _check_fixed(
    ctx: Ctx, node: ast.MorphismDecl, family: Family, options: dict[str, ast.Option]
) -> None:
    """A kernel learns its family's parameters, except bounds and counts: those are fixed."""
    missing = [p.name for p in family.params if not p.learnable and p.name not in options]
    if not missing or node.family is None or family.inline_only:
        return
    ctx.error(
        "E0315",
        f"a {family.name} kernel cannot learn its {' and '.join(missing)}: "
        "they are numbers the model fixes",
        node.family.span,
        suggestion=f"add [{', '.join(f'{m}=...' for m in missing)}] to the options",
    )


def _collect_options(ctx: Ctx, node: ast.MorphismDecl) -> dict[str, ast.Option]:
    seen: dict[str, ast.Option] = {}
    for option in node.options:
        key = option.name.text
        if key in seen:
            ctx.error("E0312", f"option '{key}' is given twice", option.name.span)
            continue
        seen[key] = option
    return seen


def _role(ctx: Ctx, node: ast.MorphismDecl, options: dict[str, ast.Option]) -> str | None:
    option = options.get("role")
    if option is None:
        return DEFAULT_ROLE  # the later spelling: no role is a kernel
    value = option.value
    role = value.name.text if isinstance(value, ast.NameOpt) else None
    if role not in ROLES:
        shown = option_text(value)
        guess = did_you_mean(shown, ROLES)
        ctx.error(
            "E0302",
            f"unknown role '{shown}'",
            value.span,
            suggestion=f"did you mean '{guess}'?" if guess else f"roles are {', '.join(ROLES)}",
            replacement=guess,
        )
        return None
    return role


def _family(
    ctx: Ctx, node: ast.MorphismDecl, role: str | None, dom: T.Type, cod: T.Type
) -> Family | None:
    clause = node.family
    if role == "observed":
        _observed_relation(ctx, node, clause, dom, cod)
        if isinstance(clause, ast.FamilyRef):
            return FAMILIES.get(clause.name.text)
        return None
    if clause is None:
        return None
    if isinstance(clause, ast.MatrixLit):
        ctx.error(
            "E0307",
            f"a matrix gives a fixed relation, which needs role=observed, not role={role}",
            clause.span,
        )
        return None
    family = lookup_family(ctx, clause.name)
    if family is None:
        return None
    if role in ("embed", "latent"):
        ctx.error(
            "E0307",
            f"role={role} takes no family, but '{family.name}' is given",
            clause.span,
            suggestion="remove the `~ ...` part, or use role=kernel",
        )
    if family.inline_only and role == "kernel":
        ctx.error(
            "E0307",
            f"{family.name} draws a matrix per row, which no codomain describes; "
            "draw it inline in a program step",
            clause.span,
            suggestion=f"sample v : T <- {family.signature()}",
        )
    if clause.args is not None and role == "kernel":
        ctx.error(
            "E0307",
            f"a kernel learns its {family.name} parameters; fix them with options instead",
            clause.span,
            suggestion=f"write [{', '.join(f'{p.name}=...' for p in family.params)}] ~ {family.name}",
        )
    return family


def lookup_family(ctx: Ctx, name: ast.Name) -> Family | None:
    """The family ``name`` names; E0306 with a did-you-mean when there is none."""
    family = FAMILIES.get(name.text)
    if family is None and not name.missing:
        guess = did_you_mean(name.text, FAMILIES)
        ctx.error(
            "E0306",
            f"unknown family '{name.text}'",
            name.span,
            suggestion=f"did you mean '{guess}'?" if guess else None,
            replacement=guess,
        )
    return family


def _observed_relation(
    ctx: Ctx, node: ast.MorphismDecl, clause: ast.FamilyClause | None, dom: T.Type, cod: T.Type
) -> None:
    if clause is None:
        ctx.error(
            "E0311",
            f"observed morphism '{node.name.text}' needs a fixed relation after '~'",
            node.span,
            suggestion="add `~ [[...], ...]` (a matrix) or `~ Family(args)`",
        )
        return
    if isinstance(clause, ast.MatrixLit):
        if not (isinstance(dom, T.FinSet) and isinstance(cod, T.FinSet)):
            ctx.error(
                "E0314",
                f"a matrix relates finite sets, but '{node.name.text}' is "
                f"{T.show(dom)} -> {T.show(cod)}",
                clause.span,
            )
            return
        if len(clause.rows) != dom.size or any(len(r) != cod.size for r in clause.rows):
            shape = f"{len(clause.rows)} x {len(clause.rows[0]) if clause.rows else 0}"
            ctx.error(
                "E0314",
                f"the matrix is {shape} but {T.describe(dom)} -> {T.describe(cod)} "
                f"needs {dom.size} x {cod.size}",
                clause.span,
            )
        for row in clause.rows:
            for cell in row:
                if cell.value < 0:
                    ctx.error("E0314", f"relation entries must be >= 0, not {cell.text}", cell.span)
        return
    family = lookup_family(ctx, clause.name)
    if family is None:
        return
    given = len(clause.args) if clause.args is not None else 0
    if given != family.arity:
        ctx.error(
            "E0504",
            f"{family.signature()} takes {family.arity} argument(s), {given} given",
            clause.span,
        )
        return
    for param, arg in zip(family.params, clause.args or [], strict=True):
        _check_param_value(ctx, family, param.name, arg.value, arg.span)
    _check_support(ctx, family, cod, clause.span)


def _validate_options(
    ctx: Ctx, options: dict[str, ast.Option], role: str | None, family: Family | None
) -> int | None:
    replicate: int | None = None
    for key, option in options.items():
        if key == "role":
            continue
        value = option.value
        spec = OPTIONS.get(key)
        param = family.param(key) if family is not None else None
        known_param = any(f.param(key) for f in FAMILIES.values())
        if spec is None and param is None and known_param:
            owner = (
                f"'{family.name}' has no parameter '{key}' (its parameters: "
                f"{', '.join(p.name for p in family.params)})"
                if family is not None
                else f"'{key}' fixes a family parameter, but there is no family"
            )
            ctx.error("E0304", f"option '{key}' is not read here: {owner}", option.name.span)
            continue
        if spec is None and param is None:
            candidates = [o for o, s in OPTIONS.items() if role is None or role in s.roles]
            if family is not None:
                candidates += [p.name for p in family.params]
            elif role == "kernel":
                candidates += sorted({p.name for f in FAMILIES.values() for p in f.params})
            guess = did_you_mean(key, candidates)
            ctx.error(
                "E0303",
                f"unknown option '{key}'",
                option.name.span,
                suggestion=f"did you mean '{guess}'?" if guess else None,
                replacement=guess,
            )
            continue
        if param is not None:
            if role is not None and role != "kernel":  # an unknown role: E0302 said so already
                ctx.error(
                    "E0304",
                    f"option '{key}' fixes a family parameter, read only by kernels",
                    option.name.span,
                )
            elif not isinstance(value, ast.NumberOpt):
                owner = family.name if family is not None else "the family"
                ctx.error(
                    "E0305", f"'{key}' fixes {owner}'s {key}: it must be a number", value.span
                )
            elif family is not None and param.vector:
                ctx.error(
                    "E0305",
                    f"'{key}' is a vector parameter of {family.name}; "
                    "it cannot be fixed by one number",
                    value.span,
                    suggestion="leave it to the parameter source",
                )
            elif family is not None:
                _check_param_value(ctx, family, key, value.value.value, value.span)
            continue
        assert spec is not None
        if role is not None and role not in spec.roles:
            ctx.error(
                "E0304",
                f"option '{key}' is not read by role={role}",
                option.name.span,
                suggestion=f"'{key}' is read by role={' or role='.join(sorted(spec.roles))}",
            )
            continue
        if key == "replicate":
            replicate = _positive_int(ctx, value, "replicate")
        elif key == "param_source":
            _check_param_source(ctx, value)
        elif key == "init":
            _check_init(ctx, value)
    return replicate


def _positive_int(ctx: Ctx, value: ast.OptionValue, what: str) -> int | None:
    if (
        isinstance(value, ast.NumberOpt)
        and value.value.value >= 1
        and value.value.value == int(value.value.value)
    ):
        return int(value.value.value)
    ctx.error("E0305", f"{what} must be a positive integer, not {option_text(value)}", value.span)
    return None


def _check_param_source(ctx: Ctx, value: ast.OptionValue) -> None:
    if isinstance(value, ast.NameOpt) and value.name.text in PARAM_SOURCES:
        return
    kind = PARAM_SOURCES.get(value.fn.text) if isinstance(value, ast.CallOpt) else None
    if isinstance(value, ast.CallOpt) and kind is not None and kind.widths:
        if value.args and all(a.value >= 1 and a.value == int(a.value) for a in value.args):
            return
        ctx.error(
            "E0305", f"{kind.name}(...) takes one or more positive integer widths", value.span
        )
        return
    ctx.error(
        "E0305",
        f"param_source must be {param_source_forms()}, not {option_text(value)}",
        value.span,
    )


def _check_init(ctx: Ctx, value: ast.OptionValue) -> None:
    if isinstance(value, ast.NumberOpt) and value.value.value > 0:
        return
    if isinstance(value, ast.NameOpt) and value.name.text in INIT_SCHEMES:
        return
    ctx.error(
        "E0305",
        f"init must be a positive number or one of {', '.join(INIT_SCHEMES)}, not {option_text(value)}",
        value.span,
    )


def _check_param_value(ctx: Ctx, family: Family, name: str, value: float, span: ast.Span) -> None:
    param = family.param(name)
    if param is None:
        return
    need = out_of_domain(param.domain, value)
    if need is not None:
        ctx.error("E0313", f"{family.name}'s {name} {need}, not {value:g}", span)


def support_fits(family: Family, t: T.Type) -> bool:
    """Whether ``family``'s draws are values of ``t`` (supports nest: a LogitNormal
    draw is a value of `Real d`, never the converse)."""
    if isinstance(t, T.Unknown):
        return True
    support = family.support
    if isinstance(t, T.FinSet):
        return support == Domain.FINITE or (support == Domain.BINARY and t.size == 2)
    if support in (Domain.FINITE, Domain.BINARY):
        return False
    if support == Domain.SIMPLEX:
        return isinstance(t, T.Space) and t.kind in spaces_holding(support)
    # elementwise supports also fit a product of such spaces (values concatenate)
    return all(
        isinstance(leaf, T.Space) and leaf.kind in spaces_holding(support) for leaf in T.leaves(t)
    )


def _check_support(ctx: Ctx, family: Family, cod: T.Type, span: ast.Span) -> None:
    if support_fits(family, cod):
        return
    ctx.error(
        "E0308",
        f"{family.name} draws values in {support_words(family.support)}, "
        f"but the codomain is {T.describe(cod)}",
        span,
        suggestion=support_hint(cod),
    )


_SUPPORT_WORDS = {
    Domain.FINITE: "a finite set",
    Domain.BINARY: "a two-element finite set",
    Domain.COUNT: "counts (non-negative integers, as Real d values)",
    Domain.CORR_CHOLESKY: "Cholesky factors of correlation matrices",
}


def support_words(support: Domain) -> str:
    """``Real d`` for a support a space is named after; words for the others."""
    if support in _SUPPORT_WORDS:
        return _SUPPORT_WORDS[support]
    return f"{SPACE_BY_DOMAIN[support]} d"


def support_hint(cod: T.Type) -> str | None:
    if isinstance(cod, T.FinSet):
        return "use ~ Categorical for a finite codomain" + (
            " or ~ Bernoulli" if cod.size == 2 else ""
        )
    if isinstance(cod, T.Space):
        # continuous families whose support is exactly this kind (narrower ones fit too)
        own = SPACE_KINDS[cod.kind].domain
        names = [
            f.name
            for f in FAMILIES.values()
            if not f.discrete and not f.inline_only and f.support == own
        ]
        return f"families for {cod.kind}: {', '.join(names)}" if names else None
    return None


def _check_role_types(
    ctx: Ctx, node: ast.MorphismDecl, role: str, family: Family | None, dom: T.Type, cod: T.Type
) -> None:
    if isinstance(dom, T.Unknown) or isinstance(cod, T.Unknown):
        return
    name = node.name.text
    if role == "embed":
        if not isinstance(dom, T.FinSet) or not T.is_continuous(cod):
            ctx.error(
                "E0309",
                f"an embedding maps a finite set into a continuous space, but '{name}' is "
                f"{T.describe(dom)} -> {T.describe(cod)}",
                node.span,
            )
    elif role == "latent":
        if not (isinstance(dom, T.FinSet) and isinstance(cod, T.FinSet)):
            ctx.error(
                "E0309",
                f"a latent relation is between finite sets, but '{name}' is "
                f"{T.describe(dom)} -> {T.describe(cod)}",
                node.span,
                suggestion="use role=kernel with a family for continuous objects",
            )
    elif role == "kernel":
        if family is None:
            if node.family is not None:
                return  # a family was written but is unknown or misplaced: reported already
            if not (isinstance(dom, T.FinSet) and isinstance(cod, T.FinSet)):
                ctx.error(
                    "E0310",
                    f"kernel '{name}' : {T.describe(dom)} -> {T.describe(cod)} needs a family",
                    node.name.span,
                    suggestion=support_hint(cod),
                )
        elif node.family is not None:
            _check_support(ctx, family, cod, node.family.span)


def option_text(value: ast.OptionValue) -> str:
    """An option value as it is written."""
    if isinstance(value, ast.NumberOpt):
        return value.value.text
    if isinstance(value, ast.NameOpt):
        return value.name.text
    if isinstance(value, ast.CallOpt):
        return f"{value.fn.text}({', '.join(a.text for a in value.args)})"
    if isinstance(value, ast.ListOpt):
        return f"[{', '.join(n.text for n in value.names)}]"
    return f'"{value.text}"'


# --------------------------------------------------------- exports and algebra


def _export(ctx: Ctx, node: ast.ExportDecl) -> None:
    if isinstance(node.expr, ast.Ref) and not node.expr.name.missing:
        found = ctx.lookup(node.expr.name.text)
        if isinstance(found, SymbolInfo) and found.kind == "object":
            ctx.ref(node.expr.name, node.expr.name.text, "global")
            ctx.error(
                "E0602",
                f"'{node.expr.name.text}' is an object; only morphisms and programs can be exported",
                node.expr.span,
            )
            return
    if isinstance(node.expr, ast.Ref) and not node.expr.name.missing:
        found = ctx.lookup(node.expr.name.text)
        if isinstance(found, SymbolInfo) and found.template:
            # a template is exported as it is; load() or prog.NAME(...) gives its values
            ctx.ref(node.expr.name, node.expr.name.text, "global")
            ctx.typed(node.expr, found.type)
            ctx.result.exports.append(node.expr.name.text)
            return
    arrow = type_of(ctx, node.expr)
    if arrow is not None:
        bare = node.expr.name.text if isinstance(node.expr, ast.Ref) else None
        ctx.result.exports.append(bare)


def _composition(ctx: Ctx, node: ast.CompositionDecl) -> None:
    for option in node.options:  # `composition N [level=...]` other than level=algebra
        key = option.name.text
        if key != "level":
            ctx.error(
                "E0303",
                f"unknown option '{key}': a composition takes only level",
                option.name.span,
                suggestion="write [level=algebra]",
            )
        else:
            shown = option_text(option.value)
            ctx.error(
                "E0305",
                f"level={shown} is not supported: every QVR composition is an algebra",
                option.value.span,
                suggestion="write [level=algebra] (or `composition N as algebra`)",
                replacement="algebra",
            )
    name = node.algebra.text
    if name not in ALGEBRAS:
        guess = did_you_mean(name, ALGEBRAS)
        ctx.error(
            "E0701",
            f"unknown algebra '{name}'",
            node.algebra.span,
            suggestion=f"did you mean '{guess}'?"
            if guess
            else f"algebras are {', '.join(ALGEBRAS)}",
            replacement=guess,
        )
        return
    ctx.result.algebra = name
