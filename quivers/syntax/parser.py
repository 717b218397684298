"""The error-tolerant, incremental QVR parser.

``parse(text)`` never raises on user input. The file is cut into units by its
layout; each unit is parsed on its own with the LALR parser, so an error in one
statement or program step cannot hide any other. Inside a unit, recovery inserts a
missing token (a closing bracket, a name) or drops an unexpected one and goes on;
a unit that still does not parse becomes an ``ErrorNode`` that keeps its keyword
and name for outlines and navigation. Parsed units are cached by their text, so
after an edit only the changed units are parsed again (in a ``FrontendCache``, see
``quivers.syntax.cache``).
"""

from __future__ import annotations

import re

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr
from lark.parsers.lalr_interactive_parser import InteractiveParser

from quivers.core.diagnostics import Diagnostic, Range
from quivers.core.vocabulary import UNSUPPORTED_DECLARATIONS, UNSUPPORTED_FORMS
from quivers.syntax import ast, grammar, layout
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache
from quivers.syntax.lower import lower, span_of

MAX_REPAIRS = 6
MAX_NESTING = 100  # brackets and constructs inside one another (ast.nesting)
MAX_DEPTH = 250  # of a unit's syntax tree (ast.depth): recursive walks stay in the stack
MAX_END_INSERTIONS = 3
_MAX_FRONTIER = 8
_DEEP_CANDIDATES = frozenset({"RPAR", "RSQB", "RBRACE", "NAME", "NUMBER", "INT"})

_CLOSERS = ("RPAR", "RSQB", "RBRACE")
_BRACKETS = re.compile(r"[()\[\]{}]")
_HEAD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+([A-Za-z_][A-Za-z0-9_]*))?")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
# the effect system's forms inside a statement (see UNSUPPORTED_FORMS); a statement
# is reported once, at the first form in it
_EFFECT_FORMS = (
    ("perform", re.compile(r"\b(perform)\s+[A-Za-z_][A-Za-z0-9_]*\s*[.(\[]")),
    ("handle", re.compile(r"^\s*(handle)\s+[A-Za-z_][A-Za-z0-9_]*\s+with\b")),
    ("effect_row", re.compile(r"(!)\s*\{")),
    ("effects_option", re.compile(r"[\[,]\s*(effects)\s*=")),
    ("construct", re.compile(r"\b(construct)\s+[A-Z]")),
    ("function", re.compile(r"^(define)\s+[A-Za-z_][A-Za-z0-9_]*\s*[(\[]")),
)


def parse(text: str, cache: FrontendCache = DEFAULT_CACHE) -> ast.SourceFile:
    """Parse a whole file, reusing the units ``cache`` has seen. Never raises."""
    lay = layout.split(text, cache)
    masked = lay.masked
    diagnostics: list[Diagnostic] = []
    items: list[ast.Item] = []
    program: ast.Program | None = None

    cached = cache.units.get
    reused = 0
    for raw in lay.units:
        kind = raw.kind
        unit_text = masked[raw.offset : raw.end_offset]
        hit = cached((kind, unit_text))
        if hit is None:
            unit = parse_unit(kind, unit_text, raw.first_line, raw.offset, cache)
            unit.doc = raw.doc
            unit.depth = raw.depth
        else:  # parse_unit's cache hit, inlined: this loop runs for every unit
            reused += 1
            unit = ast.Unit(
                kind, hit[0], raw.first_line, raw.offset, unit_text, raw.doc, hit[1], raw.depth
            )
        if unit.syntax_errors:
            diagnostics.extend(
                Diagnostic(d.code, d.message, unit.absolute(d.span), suggestion=d.suggestion)
                for d in unit.syntax_errors
            )
        if isinstance(unit.node, ast.DeclGroup) and not raw.orphan:
            # `object A, B : T`: one unit per name, each the declaration written out
            items.extend(
                ast.Unit(kind, decl, unit.line, unit.offset, unit.text, unit.doc, ())
                for decl in unit.node.decls
            )
            program = None
            continue
        if raw.orphan:
            diagnostics.append(
                Diagnostic(
                    "E0004",
                    "a program step outside any program",
                    unit.absolute(_first_word_span(unit_text)),
                    suggestion="indent it under a `program` header",
                )
            )
            items.append(unit)
            program = None
        elif raw.kind == "program_header":
            program = ast.Program(unit, [])
            items.append(program)
        elif raw.kind == "step" and program is not None:
            program.steps.append(unit)
        else:
            items.append(unit)
            program = None

    cache.stats["parse_reused"] += reused
    if lay.unterminated_block is not None:
        off = lay.unterminated_block
        line = layout._line_of(lay.line_starts, off)
        col = off - lay.line_starts[line]
        diagnostics.append(
            Diagnostic(
                "E0003",
                "block comment '#{' is never closed",
                Range(line, col, line, col + 2, off, off + 2),
                suggestion="close it with '}#'",
            )
        )
    return ast.SourceFile(text, items, lay.comments, diagnostics, lay.line_starts)


def parse_unit(
    kind: str, text: str, line: int = 0, offset: int = 0, cache: FrontendCache = DEFAULT_CACHE
) -> ast.Unit:
    """Parse one unit's text (starting at column 0 of its first line)."""
    key = (kind, text)
    hit = cache.units.get(key)
    if hit is None:
        hit = _parse_fresh(kind, text)
        cache.admit(len(text))
        cache.units[key] = hit
        cache.stats["parsed"] += 1
    else:
        cache.stats["parse_reused"] += 1
    node, errors = hit
    return ast.Unit(kind, node, line, offset, text, None, errors)


def cache_stats(cache: FrontendCache = DEFAULT_CACHE) -> dict[str, int]:
    """Units parsed afresh and reused so far, and how often the cache was emptied."""
    s = cache.stats
    return {"parsed": s["parsed"], "reused": s["parse_reused"], "cleared": s["cleared"]}


# ------------------------------------------------------------------ internals


def _parse_fresh(kind: str, text: str) -> tuple[ast.Node, tuple[ast.RelDiagnostic, ...]]:
    unsupported = _unsupported(text, kind)
    if unsupported is not None:
        return _unsupported_node(kind, text, unsupported), (unsupported,)
    errors: list[ast.RelDiagnostic] = []
    handler = _Recovery(text, errors)
    try:
        tree = grammar.parser().parse(text, start=kind, on_error=handler)
        _keywords_as_names(tree, errors)
        node = lower(tree)
    except RecursionError:
        return _error_node(text), (_too_deep(text, None),)
    except UnexpectedInput:  # the repair loop gave up on this unit
        # Only this: an exception from lowering is a bug in quivers.syntax.lower and
        # must fail loudly, not reach the user as a syntax error.
        if not errors:
            errors.append(_generic_error(text))
        return _error_node(text), tuple(errors[:1])
    # Nesting is bounded (brackets and constructs inside one another; a chain of one
    # operator is one level), and so is the tree's depth: the checker and the editor
    # features walk it recursively, and a chain of several hundred `>>` would
    # overflow their stack.
    levels = max(ast.nesting(node), _bracket_nesting(text))
    if levels > MAX_NESTING:
        return _error_node(text), (_too_deep(text, levels),)
    depth = ast.depth(node)
    if depth > MAX_DEPTH:
        return _error_node(text), (_too_long(text, depth),)
    # Keyword arguments that do not bind (also ones a repair made up) spoil the unit.
    bad = next((n for n in ast.walk(node) if isinstance(n, ast.ArgumentError)), None)
    if bad is not None:
        diag = ast.RelDiagnostic("E0006", bad.message, bad.span, suggestion=bad.suggestion)
        return _error_node(text), tuple(errors[:1]) or (diag,)
    # After a repair, report only the first error: the rest are usually its echoes.
    return node, tuple(errors[:1])


def _unsupported(text: str, kind: str) -> ast.RelDiagnostic | None:
    """One E0005 for a statement of a construct we do not support (the effect system).

    The statement's indented lines are part of its unit, so its body raises nothing
    else; string literals (a lexicon's words) are not looked into.
    """
    m = _HEAD.match(text)
    word = m.group(1) if m else None
    if kind == "declaration" and word in UNSUPPORTED_DECLARATIONS:
        start, end = m.span(1) if m else (0, 0)
        message = f"'{word}' declarations ({UNSUPPORTED_DECLARATIONS[word]}) are not supported yet"
    else:
        plain = _STRING.sub(lambda s: " " * len(s.group()), text)
        hits = [
            (hit.start(1), form, hit) for form, rx in _EFFECT_FORMS if (hit := rx.search(plain))
        ]
        if not hits:
            return None
        _, form, hit = min(hits, key=lambda h: h[0])  # the statement's first such form
        start, end = hit.span(1)
        message = (
            f"{UNSUPPORTED_FORMS[form]} is part of the effect/handler system, "
            "which is not supported yet"
        )
    line = text.count("\n", 0, start)
    col = start - (text.rfind("\n", 0, start) + 1)
    return ast.RelDiagnostic(
        "E0005",
        message,
        ast.Span(line, col, line, col + end - start, start, end),
        suggestion="remove this statement; a QVR program has no effect handlers",
    )


def _unsupported_node(kind: str, text: str, diag: ast.RelDiagnostic) -> ast.Node:
    """The node of a statement using the effect system: an ``ErrorNode``, except for a
    program header whose only such part is an ``[effects=...]`` option or an effect
    row, which parses without it, so that its steps check as usual and report nothing
    that follows from the one E0005."""
    if kind == "program_header":
        start = diag.span.offset
        opener = text.rfind("[", 0, start) if text[start] != "!" else text.find("{", start)
        stripped = _blank_group(text, opener, start if text[start] == "!" else opener)
        if stripped is not None and _unsupported(stripped, kind) is None:
            node, errors = _parse_fresh(kind, stripped)
            if not errors:
                return node
    return _error_node(text)


def _blank_group(text: str, opener: int, start: int) -> str | None:
    """``text`` with ``text[start:]`` up to the bracket closing ``text[opener]`` blanked."""
    if opener < 0 or text[opener] not in "[{":
        return None
    closer = "]" if text[opener] == "[" else "}"
    depth = 0
    for i in range(opener, len(text)):
        if text[i] == text[opener]:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return text[:start] + " " * (i + 1 - start) + text[i + 1 :]
    return None


def _too_deep(text: str, depth: int | None) -> ast.RelDiagnostic:
    levels = f"{depth} levels" if depth is not None else "too many levels"
    return ast.RelDiagnostic(
        "E0001",
        f"syntax error: this statement nests {levels} deep; at most {MAX_NESTING} are supported",
        _all_span(text),
        suggestion="split it into several `let` declarations or steps",
    )


def _too_long(text: str, depth: int) -> ast.RelDiagnostic:
    return ast.RelDiagnostic(
        "E0001",
        f"syntax error: this statement's syntax tree is {depth} levels deep (a chain of"
        f" about {depth} parts); at most {MAX_DEPTH} are supported",
        _all_span(text),
        suggestion="split the chain into several `let` declarations",
    )


def _bracket_nesting(text: str) -> int:
    """The deepest nesting of brackets in ``text`` (comments are already blanked)."""
    deepest = level = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "([{":
            level += 1
            deepest = max(deepest, level)
        else:
            level = max(0, level - 1)
    return deepest


def _keywords_as_names(tree: Tree, errors: list[ast.RelDiagnostic]) -> None:
    """Report a keyword used as a name (spec section 2).

    The contextual lexer reads a keyword as a NAME wherever only a name can follow
    (``object scan : Real 1``), so the grammar alone does not reject it.
    """
    keywords = grammar.keywords()
    for token in tree.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME"):
        if token in keywords and token.line is not None:
            errors.append(
                ast.RelDiagnostic(
                    "E0001",
                    f"syntax error: '{token}' is a keyword and cannot be used as a name",
                    span_of(token),
                    suggestion="choose another name",
                )
            )


class _Recovery:
    """``on_error`` callback: repair by inserting or dropping one token at a time."""

    def __init__(self, text: str, errors: list[ast.RelDiagnostic]) -> None:
        self.text = text
        self.errors = errors
        self.repairs = 0

    def __call__(self, e: UnexpectedInput) -> bool:
        self.repairs += 1
        if self.repairs > MAX_REPAIRS:
            return False
        if isinstance(e, UnexpectedCharacters):
            self.errors.append(_char_error(self.text, e))
            return True
        if not isinstance(e, UnexpectedToken):
            return False
        self.errors.append(_token_error(self.text, e))
        ip = e.interactive_parser
        # At the end of a unit nothing can be dropped, so allow a few insertions in a
        # row (`let y = (x +` needs a name and a ')'); elsewhere one is enough.
        path = _repair_path(ip, e.token, MAX_END_INSERTIONS if e.token.type == "$END" else 1)
        if path is not None:
            for synthetic in path:
                ip.feed_token(synthetic)
            if e.token.type != "$END":
                ip.feed_token(e.token)
            return True
        return e.token.type != "$END"  # drop the unexpected token and go on


def _repair_path(ip: InteractiveParser, token: Token, depth: int) -> list[Token] | None:
    """The shortest run of synthetic tokens (up to ``depth``) after which ``token`` fits.

    Breadth first: every candidate is tried one level deep before any two-token
    repair; deeper levels only insert closing brackets and names or numbers.
    """
    frontier: list[tuple[InteractiveParser, list[Token]]] = [(ip, [])]
    for level in range(depth):
        next_frontier: list[tuple[InteractiveParser, list[Token]]] = []
        for state, path in frontier:
            for candidate in _insertion_candidates(state.accepts()):
                if level > 0 and candidate not in _DEEP_CANDIDATES:
                    continue
                trial = state.copy()
                synthetic = _synthetic(candidate, token)
                try:
                    trial.feed_token(synthetic)
                except UnexpectedInput:
                    continue
                if token.type in trial.accepts():
                    return [*path, synthetic]
                next_frontier.append((trial, [*path, synthetic]))
        frontier = next_frontier[:_MAX_FRONTIER]
    return None


def _insertion_candidates(accepted: set[str]) -> list[str]:
    first = [t for t in _CLOSERS if t in accepted]
    punct = sorted(t for t in accepted if t not in _CLOSERS and _is_punctuation(t))
    tail = [t for t in ("NAME", "INT", "NUMBER") if t in accepted]
    return first + punct + tail


def _is_punctuation(terminal: str) -> bool:
    if terminal == "$END":
        return False
    pattern = _terminal_pattern(terminal)
    return pattern is not None and not pattern[:1].isalpha()


def _terminal_pattern(terminal: str) -> str | None:
    try:
        term = grammar.parser().get_terminal(terminal)
    except KeyError:
        return None
    return term.pattern.value if isinstance(term.pattern, PatternStr) else None


_SYNTHETIC_VALUES = {"NAME": "", "INT": "1", "NUMBER": "0"}


def _synthetic(terminal: str, near: Token) -> Token:
    value = _SYNTHETIC_VALUES.get(terminal) or _terminal_pattern(terminal) or ""
    if near.line is None:
        return Token(terminal, value, 0, 1, 1, 1, 1, 0)
    return Token.new_borrow_pos(terminal, value, near)


def _describe(terminal: str) -> str:
    if terminal == "$END":
        return "end of line"
    pattern = _terminal_pattern(terminal)
    if pattern is not None:
        return f"'{pattern}'"
    return {"NAME": "a name", "INT": "an integer", "NUMBER": "a number", "STRING": "a string"}.get(
        terminal, terminal.lower()
    )


MAX_EXPECTED = 8


def _expected(accepted: set[str]) -> str:
    """What may come next: names and numbers first, then keywords, then punctuation.

    (Sorted as plain strings, quoted keywords and brackets came first and a cut after
    six hid 'a name', usually the most useful word, from `object A :`.)
    """
    described = {_describe(t) for t in accepted}
    if "'FinSet'" in described:  # a bare size is a type only to be reported (E0203)
        described.discard("an integer")
    words = sorted(described, key=_expected_rank)
    if len(words) > MAX_EXPECTED:
        words = words[:MAX_EXPECTED] + ["..."]
    return ", ".join(words)


def _expected_rank(word: str) -> tuple[int, str]:
    if not word.startswith("'"):
        return (0, word)  # a name, a number, end of line
    return (1 if word[1:2].isalpha() else 2, word)


def _token_error(text: str, e: UnexpectedToken) -> ast.RelDiagnostic:
    token = e.token
    accepted = e.interactive_parser.accepts() if e.interactive_parser else set(e.expected)
    if token.type == "$END" or token.line is None:
        span = _end_span(text)
        what = "the statement ends too early"
    else:
        span = span_of(token)
        what = f"unexpected '{token}'"
    return ast.RelDiagnostic("E0001", f"syntax error: {what}; expected {_expected(accepted)}", span)


def _char_error(text: str, e: UnexpectedCharacters) -> ast.RelDiagnostic:
    pos = e.pos_in_stream or 0
    line = text.count("\n", 0, pos)
    col = pos - (text.rfind("\n", 0, pos) + 1)
    char = text[pos] if pos < len(text) else ""
    span = ast.Span(line, col, line, col + 1, pos, pos + 1)
    return ast.RelDiagnostic("E0002", f"unexpected character {char!r}", span)


def _generic_error(text: str) -> ast.RelDiagnostic:
    return ast.RelDiagnostic(
        "E0001", "syntax error: this statement could not be read", _all_span(text)
    )


def _end_span(text: str) -> ast.Span:
    stripped = text.rstrip()
    end = len(stripped)
    line = stripped.count("\n")
    col = end - (stripped.rfind("\n") + 1)
    return ast.Span(line, max(col - 1, 0), line, col, max(end - 1, 0), end)


def _all_span(text: str) -> ast.Span:
    stripped = text.rstrip()
    lead = len(stripped) - len(stripped.lstrip())
    lines = stripped.count("\n")
    end_col = len(stripped) - (stripped.rfind("\n") + 1)
    return ast.Span(0, lead, lines, end_col, lead, len(stripped))


def _first_word_span(text: str) -> ast.Span:
    m = re.search(r"\S+", text)
    if m is None:
        return ast.NO_SPAN
    return ast.Span(0, m.start(), 0, m.end(), m.start(), m.end())


def _error_node(text: str) -> ast.ErrorNode:
    m = _HEAD.match(text)
    keyword = name = None
    if m:
        keyword = m.group(1)
        if m.group(2) and keyword in grammar.keywords():
            start, end = m.span(2)
            name = ast.Name(ast.Span(0, start, 0, end, start, end), m.group(2))
    return ast.ErrorNode(_all_span(text), keyword, name)
