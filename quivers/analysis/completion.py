"""Completion aware of scope and syntax, and signature help.

Which keywords fit at the cursor comes from the grammar itself: the unit's text up to
the cursor is fed to lark's interactive parser and ``accepts()`` names the terminals
that may follow. Which names fit comes from the scope (top-level names declared
above the cursor, program variables bound by earlier steps) and from the local
context (after ``~`` a family, after ``role=`` a role, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark.exceptions import UnexpectedInput
from lark.lexer import PatternStr

from quivers.analysis.describe import symbol_signature
from quivers.analysis.document import Document
from quivers.core.families import FAMILIES
from quivers.core.vocabulary import (
    ALGEBRAS,
    ARITH_FUNCTIONS,
    DEFAULT_MLP_WIDTH,
    INIT_SCHEMES,
    KEYWORD_DOCS,
    LATER_SPELLING_KEYWORDS,
    MARGINAL_REDUCTIONS,
    OPTIONS,
    PARAM_SOURCES,
    ROLES,
    SPACE_KINDS,
    STEP_OPTIONS,
    TYPE_KEYWORDS,
)
from quivers.semantic import types as T
from quivers.syntax import ast
from quivers.syntax.grammar import keywords, parser


@dataclass(frozen=True, slots=True)
class CompletionItem:
    label: str
    kind: str  # keyword | object | morphism | let | program | variable | family | role |
    # option | algebra | function | type | value
    detail: str = ""
    insert_text: str | None = None
    snippet: bool = False
    documentation: str | None = None


_PARTIAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COMBINATOR_SNIPPETS = {
    "scan": "scan(${1:cell})",
    "rscan": "rscan(${1:cell})",
    "fan": "fan(${1:f}, ${2:g})",
    "repeat": "repeat(${1:f}, ${2:n})",
    "stack": "stack(${1:f}, ${2:n})",
    "identity": "identity(${1:A})",
}


def complete(doc: Document, line: int, col: int, limit: int | None = None) -> list[CompletionItem]:
    """Everything that fits at the cursor; with ``limit``, top-level names beyond it are
    left out before their details are computed (see ``complete_limited``)."""
    if line >= len(doc.lines):
        return []
    line_text = doc.lines[line]
    before = line_text[:col]
    if _in_comment(before):
        return []
    partial = _PARTIAL.search(before)
    stem = before[: partial.start()] if partial else before
    kind, prefix, step_index, program = _context(doc, line, col, stem)

    contextual = _contextual(doc, line, stem, line_text[col:], program, step_index)
    if contextual is not None:
        return contextual

    accepted = _accepts(kind, prefix)
    if kind == "declaration":  # a top-level line may also start a program
        header = _accepts("program_header", prefix)
        if header is not None:
            accepted = header if accepted is None else accepted | header
    items: list[CompletionItem] = []
    if accepted is None:  # the text before the cursor does not parse: offer what is visible
        accepted = {"NAME"}
    for word in sorted(_keywords_in(accepted)):
        items.append(_keyword_item(word))
    if "NAME" in accepted:
        if kind == "step" and re.search(r"<-\s*$", stem):
            items.extend(_family_items(snippets=True))
        word = partial.group().lower() if partial else ""
        items.extend(_visible_names(doc, line, program, step_index, kind, word, limit))
    return items


MAX_ITEMS = 200
_SYMBOL_KINDS = ("object", "morphism", "let", "program")


def complete_limited(
    doc: Document, line: int, col: int, limit: int = MAX_ITEMS
) -> tuple[list[CompletionItem], bool]:
    """``complete``, at most ``limit`` items, and whether the list was cut (the client
    should ask again as the word grows: LSP's ``isIncomplete``).

    A long file offers every earlier declaration; serialising thousands of items made
    completion slow in 5,000-line files. When cut, only items matching the word
    typed so far (as a subsequence) are kept, then keywords, contextual items and
    program variables first and, of the top-level names, those declared nearest above
    the cursor.
    """
    items = complete(doc, line, col, limit)
    visible = sum(1 for symbol in doc.symbols.values() if symbol.line < line)
    if len(items) <= limit and visible <= limit:
        return items, False
    before = doc.lines[line][:col] if line < len(doc.lines) else ""
    partial = _PARTIAL.search(before)
    word = partial.group().lower() if partial else ""
    if word:
        items = [i for i in items if _subsequence(word, i.label.lower())]
        if len(items) <= limit:
            return items, True
    others = [i for i in items if i.kind not in _SYMBOL_KINDS]
    names = [i for i in items if i.kind in _SYMBOL_KINDS]  # in declaration order
    room = max(limit - len(others), 0)
    # prefix matches first, then the nearest declarations (the last ones above)
    ranked = sorted(
        range(len(names)),
        key=lambda k: (bool(word) and not names[k].label.lower().startswith(word), -k),
    )
    return others[:limit] + [names[k] for k in sorted(ranked[:room])], True


def _subsequence(word: str, label: str) -> bool:
    it = iter(label)
    return all(ch in it for ch in word)


# ------------------------------------------------------------------- context


def _context(
    doc: Document, line: int, col: int, stem: str
) -> tuple[str, str, int, ast.Program | None]:
    """Start rule, unit text before the cursor, step index and enclosing program."""
    loc = doc.unit_at(line)
    indented = bool(doc.lines[line][:1].isspace()) if doc.lines[line] else False
    if loc is not None and line >= loc.unit.line:
        unit = loc.unit
        program = loc.item if isinstance(loc.item, ast.Program) else None
        start = unit.offset
        cursor = doc.file.line_starts[line] + len(stem)
        prefix = doc.analysis.file.text[start:cursor]
        if line > unit.line or stem.strip():
            return unit.kind, _strip_comments(prefix), loc.unit_index, program
    # a fresh line: inside the program above it when indented
    program = None
    index = 0
    if indented:
        above = doc.unit_at(_previous_code_line(doc, line))
        if above is not None and isinstance(above.item, ast.Program):
            program, index = above.item, len(above.item.steps) + 1
    kind = "step" if program is not None else "declaration"
    return kind, stem, index, program


def _previous_code_line(doc: Document, line: int) -> int:
    for i in range(line - 1, -1, -1):
        if doc.lines[i].strip() and not doc.lines[i].lstrip().startswith("#"):
            return i
    return -1


def _strip_comments(text: str) -> str:
    return re.sub(r"#[^\n]*", "", text)


def _in_comment(before: str) -> bool:
    return "#" in re.sub(r'"[^"]*"', "", before)


def _accepts(kind: str, prefix: str) -> set[str] | None:
    try:
        ip = parser().parse_interactive(prefix, start=kind)
        ip.exhaust_lexer()
        return set(ip.accepts())
    except UnexpectedInput:
        return None


def _keywords_in(accepted: set[str]) -> set[str]:
    words = keywords()
    out: set[str] = set()
    for terminal in accepted:
        try:
            pattern = parser().get_terminal(terminal).pattern
        except KeyError:
            continue
        if isinstance(pattern, PatternStr) and pattern.value in words:
            out.add(pattern.value)
    return out - LATER_SPELLING_KEYWORDS


# ------------------------------------------------------------------ contextual


def _contextual(
    doc: Document,
    line: int,
    stem: str,
    after: str,
    program: ast.Program | None,
    step_index: int,
) -> list[CompletionItem] | None:
    if re.search(r"\brole\s*=\s*$", stem):
        return [CompletionItem(r, "role", "role", documentation=d) for r, d in ROLES.items()]
    if re.search(r"\bparam_source\s*=\s*$", stem):
        return [
            CompletionItem(p.name, "value", p.doc, f"{p.name}(${{1:{DEFAULT_MLP_WIDTH}}})", True)
            if p.widths
            else CompletionItem(p.name, "value", p.doc)
            for p in PARAM_SOURCES.values()
        ]
    if re.search(r"\binit\s*=\s*$", stem):
        return [CompletionItem(s, "value", "initialiser") for s in INIT_SCHEMES]
    if re.search(r"~\s*$", stem):
        return _family_items(snippets=False)
    if re.match(r"\s*composition\s+$", stem):
        return [CompletionItem(a, "algebra", d.doc) for a, d in ALGEBRAS.items()]
    if re.match(r"\s*composition\s+\w+\s+as\s+$", stem):  # `composition N as real`
        algebras = [CompletionItem(a, "algebra", d.doc) for a, d in ALGEBRAS.items()]
        keyword = CompletionItem("algebra", "keyword", "the name before `as` is the algebra")
        return [keyword, *algebras]
    if _in_options(stem):
        return _option_items(stem, after)
    if program is not None:
        step_options = _step_option_items(doc, stem, program, step_index)
        if step_options is not None:
            return step_options
    if program is not None and re.match(r"\s*(let|score)\s+\w+\s*=", stem):
        items = [
            CompletionItem(f, "function", f"{f}(x)", f"{f}(${{1:x}})", snippet=True)
            for f in ARITH_FUNCTIONS
        ]
        return items + _locals(doc, program, step_index)
    mixture = re.search(r"<-\s*Mixture\s*\((.*)$", stem)
    if program is not None and mixture is not None:
        # in its list of components a family call; elsewhere (weights, a component's
        # arguments) a bound value
        if _open_bracket(mixture.group(1)) == "[":
            return _family_items(snippets=True)
        return _locals(doc, program, step_index)
    call = re.search(r"<-\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)$", stem)
    if program is not None and call is not None:
        return _locals(doc, program, step_index)
    return None


_STEP_OPTION_VALUE = re.compile(r"<-.*\[[^\]]*\b(\w+)\s*=\s*\[?\s*$")
_STEP_OPTION_NAME = re.compile(r"<-.*\)\s*\[([^\]]*,)?\s*$")


def _step_option_items(
    doc: Document, stem: str, program: ast.Program, step_index: int
) -> list[CompletionItem] | None:
    """Inside a draw's `[...]`: the step options (STEP_OPTIONS), and after `over=` or
    `iid_over=` the finite sets in scope, after `via=` the bound ids, after
    `reduction=` the reductions."""
    kind = re.match(r"\s*(\w+)", stem)
    step = kind.group(1) if kind is not None else ""
    step = "sample" if step == "let" else step
    value = _STEP_OPTION_VALUE.search(stem)
    if value is not None and value.group(1) in STEP_OPTIONS:
        key = value.group(1)
        if key == "reduction":
            return [CompletionItem(r, "value", d) for r, d in MARGINAL_REDUCTIONS.items()]
        result = doc.result_of(program)
        if key == "via":  # bound ids: finite-set values of earlier steps
            return [
                CompletionItem(n, "variable", f"{v.kind} : {T.show(v.type)}")
                for n, v in (result.locals.items() if result is not None else ())
                if v.unit_index < step_index
                and v.kind != "template"
                and isinstance(v.type, T.FinSet)
            ]
        sets = [
            CompletionItem(name, "object", symbol_signature(sym))
            for name, sym in doc.symbols.items()
            if sym.kind == "object" and isinstance(sym.info.type, T.FinSet)
        ]
        if result is not None:
            sets += [
                CompletionItem(n, "object", f"template parameter {n} : FinSet")
                for n, v in result.locals.items()
                if v.kind == "template" and isinstance(v.type, T.FinSet)
            ]
        return sets
    if _STEP_OPTION_NAME.search(stem) is None:
        return None
    return [
        CompletionItem(name, "option", spec.doc, f"{name}=")
        for name, spec in STEP_OPTIONS.items()
        if step in spec.steps
    ]


def _open_bracket(text: str) -> str | None:
    """The innermost bracket still open at the end of ``text``."""
    stack: list[str] = []
    for ch in text:
        if ch in "([":
            stack.append(ch)
        elif ch in ")]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _in_options(stem: str) -> bool:
    depth = 0
    for ch in stem:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth > 0 and "morphism" in stem and re.search(r"[\[,]\s*$", stem) is not None


def _option_items(stem: str, after: str) -> list[CompletionItem]:
    role = re.search(r"\brole\s*=\s*(\w+)", stem)
    family = re.search(r"~\s*([A-Za-z_]\w*)", after)
    given = set(re.findall(r"(\w+)\s*=", stem))
    items: list[CompletionItem] = []
    for name, spec in OPTIONS.items():
        if name in given or (role and role.group(1) not in spec.roles):
            continue
        items.append(CompletionItem(name, "option", spec.doc, f"{name}=", documentation=spec.doc))
    fam = FAMILIES.get(family.group(1)) if family else None
    if fam is not None and (role is None or role.group(1) == "kernel"):
        for p in fam.params:
            if p.name not in given:
                items.append(
                    CompletionItem(
                        p.name,
                        "option",
                        f"fix {fam.name}'s {p.name} ({p.domain.value})",
                        f"{p.name}=",
                    )
                )
    return items


def _family_items(snippets: bool) -> list[CompletionItem]:
    items = []
    for fam in FAMILIES.values():
        insert = None
        if snippets:
            args = ", ".join(f"${{{i}:{p.name}}}" for i, p in enumerate(fam.params, 1))
            insert = f"{fam.name}({args})"
        items.append(CompletionItem(fam.name, "family", fam.signature(), insert, snippets, fam.doc))
    return items


def _keyword_item(word: str) -> CompletionItem:
    if word in _COMBINATOR_SNIPPETS:
        return CompletionItem(
            word, "keyword", "combinator", _COMBINATOR_SNIPPETS[word], True, KEYWORD_DOCS.get(word)
        )
    if word in TYPE_KEYWORDS:
        kind = SPACE_KINDS.get(word)
        doc = kind.doc if kind is not None else "finite set {0..n-1}"
        return CompletionItem(word, "type", doc, f"{word} ${{1:1}}", True)
    return CompletionItem(word, "keyword", "keyword", documentation=KEYWORD_DOCS.get(word))


# ---------------------------------------------------------------------- scope


def _visible_names(
    doc: Document,
    line: int,
    program: ast.Program | None,
    step_index: int,
    kind: str,
    word: str = "",
    limit: int | None = None,
) -> list[CompletionItem]:
    # names are in scope after their declaration
    visible = [(name, symbol) for name, symbol in doc.symbols.items() if symbol.line < line]
    if limit is not None and len(visible) > limit:
        if word:
            visible = [v for v in visible if _subsequence(word, v[0].lower())]
        # prefix matches first, then the nearest declarations (the last ones above)
        ranked = sorted(
            range(len(visible)),
            key=lambda k: (bool(word) and not visible[k][0].lower().startswith(word), -k),
        )
        visible = [visible[k] for k in sorted(ranked[:limit])]
    items = [
        CompletionItem(name, symbol.kind, symbol_signature(symbol), documentation=symbol.doc)
        for name, symbol in visible
    ]
    if program is not None and kind == "step":
        items.extend(_locals(doc, program, step_index))
    return items


def _locals(doc: Document, program: ast.Program, step_index: int) -> list[CompletionItem]:
    result = doc.result_of(program)
    if result is None:
        return []
    return [
        CompletionItem(name, "variable", f"{local.kind} : {T.show(local.type)}")
        for name, local in result.locals.items()
        if local.unit_index < step_index and local.kind != "host"
    ]


# -------------------------------------------------------------- signature help


@dataclass(frozen=True, slots=True)
class Signature:
    label: str
    parameters: tuple[str, ...]
    active: int
    documentation: str = ""


def signature_help(doc: Document, line: int, col: int) -> Signature | None:
    if line >= len(doc.lines):
        return None
    before = doc.lines[line][:col]
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\Z", before[:i])
                if m is None:
                    return None
                active = before[i + 1 :].count(",")
                return _signature_of(doc, m.group(1), active)
            depth -= 1
    return None


def _signature_of(doc: Document, name: str, active: int) -> Signature | None:
    family = FAMILIES.get(name)
    if family is not None:
        params = tuple(f"{p.name}: {p.domain.value}" for p in family.params)
        return Signature(f"{name}({', '.join(params)})", params, active, family.doc)
    symbol = doc.symbols.get(name)
    if symbol is not None and isinstance(symbol.info.type, T.Arrow):
        arrow = symbol.info.type
        names = _param_names(symbol)
        factors = T.factors(arrow.dom)
        params = tuple(
            f"{names[i] if i < len(names) else f'x{i + 1}'}: {T.show(f)}"
            for i, f in enumerate(factors)
        )
        label = f"{name}({', '.join(params)}) -> {T.show(arrow.cod)}"
        return Signature(label, params, active, symbol.doc or "")
    return None


def _param_names(symbol: object) -> list[str]:
    unit = getattr(symbol, "unit", None)
    node = unit.node if unit is not None else None
    if isinstance(node, ast.ProgramHeader) and node.params:
        return [p.text for p in node.params]
    return []
