"""Checking ``deduction`` blocks (weighted deduction systems, docs/language.md
section 18) and turning a checked one into its plain-data system.

Names in rule terms: a name declared in ``atoms`` is a constant; otherwise a single
capital letter or an all-capitals name (``I``, ``X``, ``NP1``) is a variable, and any
other name is an unknown atom. Each functor keeps the arity of its first use. The
start symbol must be derivable, which the position-free saturation of
``quivers.core.deduction.grammar`` decides (it also finds unary cycles).
"""

from __future__ import annotations

import re

from quivers.core.deduction.chart import DeductionError
from quivers.core.deduction.grammar import analyse
from quivers.core.deduction.system import (
    DEFAULT_DEPTH,
    SEMIRINGS,
    SPAN,
    DeductionSystem,
    LexEntry,
    Rule,
)
from quivers.core.deduction.terms import Term, Var
from quivers.semantic import types as T
from quivers.semantic.context import Ctx
from quivers.semantic.exprs import resolve_type
from quivers.semantic.model import SymbolInfo
from quivers.syntax import ast

_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*$")
OPTIONS = ("semiring", "start", "depth")


def did_you_mean(word: str, candidates: object) -> str | None:
    import difflib

    names = list(candidates)  # type: ignore[call-overload]
    by_case = {n.lower(): n for n in names}
    if word.lower() in by_case:
        return by_case[word.lower()]
    found = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return found[0] if found else None


def is_variable(name: str, atoms: set[str]) -> bool:
    return name not in atoms and _VARIABLE.match(name) is not None


def check_deduction(ctx: Ctx, node: ast.DeductionDecl) -> None:
    from quivers.semantic.decls import declare

    declare(ctx, node.name)
    dom, cod = resolve_type(ctx, node.dom), resolve_type(ctx, node.cod)
    options = _options(ctx, node)
    ctx.result.symbol = SymbolInfo(
        "deduction", T.Arrow(dom, cod), options=tuple((k, v) for k, v in options.items())
    )
    atoms: dict[str, ast.Name] = {}
    for part in node.parts:
        if isinstance(part, ast.AtomsPart):
            for name in part.names:
                if name.missing:
                    continue
                if name.text in atoms:
                    ctx.error("E0806", f"atom '{name.text}' is declared twice", name.span)
                    continue
                atoms[name.text] = name
                ctx.ref(name, name.text, "local", is_decl=True)
    arity: dict[str, tuple[int, str]] = {}  # functor -> (arity, where first used)
    rule_names: set[str] = set()
    atom_set = set(atoms)
    for part in node.parts:
        if isinstance(part, ast.RulePart):
            where = f"rule '{part.name.text}'"
            if part.name.text in rule_names:
                ctx.error("E0806", f"rule '{part.name.text}' is declared twice", part.name.span)
            rule_names.add(part.name.text)
            bound: set[str] = set()
            for p in part.premises:
                _term(ctx, p, atom_set, arity, where, bound, ground=False)
            used: set[str] = set()
            _term(ctx, part.conclusion, atom_set, arity, where, used, ground=False)
            for v in _variable_names(part.conclusion, atom_set):
                if v.text not in bound:
                    ctx.error(
                        "E0802",
                        f"variable '{v.text}' in the conclusion of rule '{part.name.text}' is "
                        "not bound by any premise",
                        v.span,
                        suggestion=f"use '{v.text}' in a premise, or declare it in `atoms`",
                    )
                    bound.add(v.text)  # once per rule
        elif isinstance(part, ast.LexiconPart):
            for entry in part.entries:
                where = f'the lexicon entry "{entry.word.text}"'
                _term(ctx, entry.category, atom_set, arity, where, set(), ground=True)
                _term(ctx, entry.form, atom_set, arity, where, set(), ground=True)
    span_arity = arity.get(SPAN, (3, ""))[0]
    if span_arity not in (3, 4):
        ctx.error(
            "E0803",
            f"'{SPAN}' items have {span_arity} arguments in {arity[SPAN][1]}; lexicon entries "
            f"seed span(i, i+1, Category) or span(i, i+1, Category, form)",
            node.name.span,
        )
    start = options.get("start", "S")
    start_span = _option_span(node, "start") or node.name.span
    if start not in atoms:
        ctx.error(
            "E0801",
            f"the start symbol '{start}' of deduction '{node.name.text}' is not a declared atom",
            start_span,
            suggestion=f"add {start} to `atoms`",
        )
    if any(not d.warning for d in ctx.result.diags):
        return
    system = system_of(node)
    try:
        grammar = analyse(system)
    except DeductionError as err:
        ctx.error("E0808", str(err), node.name.span)
        return
    if not grammar.goal_labels:
        ctx.error(
            "E0804",
            f"deduction '{node.name.text}': no sentence derives the start symbol '{start}' "
            f"(no lexicon entry or rule conclusion reaches a span of {start})",
            start_span,
        )


def _options(ctx: Ctx, node: ast.DeductionDecl) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in node.options:
        key = opt.name.text
        value = opt.value
        if key not in OPTIONS:
            hint = did_you_mean(key, OPTIONS)
            ctx.error(
                "E0805",
                f"unknown deduction option '{key}' (expected one of {', '.join(OPTIONS)})",
                opt.name.span,
                suggestion=f"did you mean '{hint}'?" if hint else None,
                replacement=hint,
            )
            continue
        if key == "depth":
            if (
                not isinstance(value, ast.NumberOpt)
                or value.value.value != int(value.value.value)
                or value.value.value < 0
            ):
                ctx.error("E0805", "depth must be a non-negative integer", value.span)
                continue
            out[key] = str(int(value.value.value))
            continue
        if not isinstance(value, ast.NameOpt):
            ctx.error("E0805", f"{key} must be a name", value.span)
            continue
        text = value.name.text
        if key == "semiring" and text not in SEMIRINGS:
            hint = did_you_mean(text, SEMIRINGS)
            names = ", ".join(dict.fromkeys(SEMIRINGS.values()))
            ctx.error(
                "E0805",
                f"unknown semiring '{text}' (expected one of {names})",
                value.span,
                suggestion=f"did you mean '{hint}'?" if hint else None,
                replacement=hint,
            )
            continue
        out[key] = text
    return out


def _option_span(node: ast.DeductionDecl, key: str) -> ast.Span | None:
    for opt in node.options:
        if opt.name.text == key:
            return opt.value.span
    return None


def _term(
    ctx: Ctx,
    term: ast.DTerm,
    atoms: set[str],
    arity: dict[str, tuple[int, str]],
    where: str,
    bound: set[str],
    ground: bool,
) -> None:
    head = term.head
    if head.missing:
        return
    name = head.text
    if is_variable(name, atoms):
        if term.args:
            ctx.error(
                "E0807",
                f"'{name}' is a variable and cannot take arguments",
                head.span,
                suggestion=f"declare {name} in `atoms` to use it as a constructor",
            )
        elif ground:
            ctx.error(
                "E0807",
                f"variable '{name}' in {where}: lexicon categories and forms are ground terms",
                head.span,
                suggestion=f"declare {name} in `atoms`",
            )
        bound.add(name)
    elif name not in atoms:
        hint = did_you_mean(name, atoms)
        ctx.error(
            "E0801",
            f"unknown atom '{name}' in {where}",
            head.span,
            suggestion=f"did you mean '{hint}'?" if hint else f"declare {name} in `atoms`",
            replacement=hint,
        )
    else:
        ctx.ref(head, name, "local")
        n = len(term.args)
        first = arity.get(name)
        if first is None:
            arity[name] = (n, where)
        elif first[0] != n:
            ctx.error(
                "E0803",
                f"'{name}' takes {n} argument{'s' * (n != 1)} in {where} but {first[0]} in "
                f"{first[1]}",
                term.span,
            )
    for a in term.args:
        _term(ctx, a, atoms, arity, where, bound, ground)


def _variable_names(term: ast.DTerm, atoms: set[str]) -> list[ast.Name]:
    out = []
    if not term.args and is_variable(term.head.text, atoms):
        out.append(term.head)
    for a in term.args:
        out.extend(_variable_names(a, atoms))
    return out


# ------------------------------------------------------------ the plain data


def system_of(node: ast.DeductionDecl) -> DeductionSystem:
    """The checked block as a :class:`DeductionSystem`."""
    atoms = [n.text for p in node.parts if isinstance(p, ast.AtomsPart) for n in p.names]
    atom_set = set(atoms)

    def term(t: ast.DTerm) -> Term:
        if t.args:
            return (t.head.text, *(term(a) for a in t.args))
        if is_variable(t.head.text, atom_set):
            return Var(t.head.text)
        return t.head.text

    rules = []
    lexicon = []
    for p in node.parts:
        if isinstance(p, ast.RulePart):
            rules.append(
                Rule(
                    p.name.text,
                    tuple(term(x) for x in p.premises),
                    term(p.conclusion),
                    p.learnable is not None,
                )
            )
        elif isinstance(p, ast.LexiconPart):
            for e in p.entries:
                lexicon.append(
                    LexEntry(e.word.text, term(e.category), term(e.form), e.learnable is not None)
                )
    opts: dict[str, str] = {}
    for o in node.options:
        if isinstance(o.value, ast.NameOpt):
            opts[o.name.text] = o.value.name.text
        elif isinstance(o.value, ast.NumberOpt):
            opts[o.name.text] = str(int(o.value.value.value))
    return DeductionSystem(
        node.name.text,
        tuple(atoms),
        tuple(rules),
        tuple(lexicon),
        SEMIRINGS.get(opts.get("semiring", "LogProb"), "LogProb"),
        opts.get("start", "S"),
        int(opts.get("depth", DEFAULT_DEPTH)),
    )
