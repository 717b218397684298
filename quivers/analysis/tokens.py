"""Semantic tokens: every word, number, operator and comment with its class.

Names are classified by what they resolve to (an object is a type, a morphism a
function, a program variable a variable, ...), which a TextMate grammar cannot
know; keywords, numbers and comments are included too so that clients without a
TextMate grammar (Neovim) still get full highlighting.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from quivers.analysis.document import Document, Located
from quivers.core.families import FAMILIES
from quivers.core.vocabulary import ALGEBRAS, ARITH_FUNCTIONS, OPTIONS, ROLES
from quivers.semantic import types as T
from quivers.syntax import ast
from quivers.syntax.ast import Comment
from quivers.syntax.grammar import keywords

TOKEN_TYPES = (
    "keyword",
    "type",
    "function",
    "variable",
    "parameter",
    "class",
    "property",
    "enumMember",
    "number",
    "string",
    "comment",
    "operator",
    "macro",
)
TOKEN_MODIFIERS = ("declaration", "readonly", "defaultLibrary", "documentation")

_LEXEME = re.compile(
    r"(?P<macro>#\[learnable\])"
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<operator>->|<-|>>|\|-|⊢|[@~*+\-/=:])"
)
_SYMBOL_CLASS = {
    "object": "type",
    "morphism": "function",
    "let": "function",
    "program": "macro",
    "deduction": "macro",
}
_LOCAL_CLASS = {"param": "parameter", "host": "variable"}


@dataclass(frozen=True, slots=True)
class SemanticToken:
    line: int
    col: int
    length: int
    type: str
    modifiers: tuple[str, ...] = ()


# A raw token: (line, col, length, type index, modifier bits), ordered as tuples.
RawToken = tuple[int, int, int, int, int]

_TYPE_INDEX = {name: i for i, name in enumerate(TOKEN_TYPES)}
_MOD_BIT = {name: 1 << i for i, name in enumerate(TOKEN_MODIFIERS)}
# The document's FrontendCache.tokens maps (id(node), id(result), unit index, unit
# text, indent, skipped lines) to the tokens relative to the unit's first line (and the
# last absolute placement). An unchanged statement keeps its node and check result
# across edits, so only edited statements are lexed and classified again. The node and
# result are kept in the value so that their ids cannot be reused while the entry
# lives. The value is [node, result, relative tokens, first line placed at, placed tokens].


def semantic_tokens(
    doc: Document, start_line: int = 0, end_line: int | None = None
) -> list[SemanticToken]:
    types, mods = TOKEN_TYPES, TOKEN_MODIFIERS
    return [
        SemanticToken(
            line, col, length, types[kind], tuple(m for i, m in enumerate(mods) if bits >> i & 1)
        )
        for line, col, length, kind, bits in raw_tokens(doc, start_line, end_line)
    ]


def raw_tokens(doc: Document, start_line: int = 0, end_line: int | None = None) -> list[RawToken]:
    """``semantic_tokens`` as plain tuples, sorted (the fast path for the server)."""
    every = _all_raw_tokens(doc)
    last = len(doc.lines) - 1 if end_line is None else end_line
    if start_line <= 0 and last >= len(doc.lines) - 1:
        return every
    lo = bisect.bisect_left(every, (start_line,))
    hi = bisect.bisect_left(every, (last + 1,))
    return every[lo:hi]


def _all_raw_tokens(doc: Document) -> list[RawToken]:
    if doc.raw_tokens is not None:
        return doc.raw_tokens
    masked = _masked_lines(doc)
    starts = doc.file.line_starts
    out: list[RawToken] = []
    covered = 0  # the first line no unit has lexed yet
    cache = doc.cache
    known = cache.tokens
    for loc in doc.located:
        first, last = loc.unit.line, loc.unit.end_line
        for line in range(covered, first):
            out.extend(_lex_line(masked[line], line, {}))
        first = max(first, covered)
        if first > last:
            continue
        unit = loc.unit
        indent = unit.offset - doc.file.line_starts[unit.line] if unit.line < len(starts) else 0
        key = (id(unit.node), id(loc.result), loc.unit_index, unit.text, indent, first - unit.line)
        hit = known.get(key)
        if hit is None:
            names = _unit_names(doc, loc, first)
            relative: list[RawToken] = []
            for i, line_text in enumerate(masked[first : last + 1]):
                relative.extend(_lex_line(line_text, i, names))
            hit = [unit.node, loc.result, relative, -1, relative]
            cache.admit(len(unit.text))
            known[key] = hit
        if hit[3] != first:  # placed elsewhere before: shift the relative tokens
            placed = [(first + r, c, n, k, b) for r, c, n, k, b in hit[2]]
            # One store: an analysis interrupted here (the server's analysis threads
            # are) cannot leave the entry with a new line and the old tokens.
            hit[3:5] = (first, placed)
        out.extend(hit[4])
        covered = last + 1
    for line in range(covered, len(masked)):
        out.extend(_lex_line(masked[line], line, {}))
    for c in doc.file.comments:
        out.extend(_comment_tokens(doc, c))
    out.sort()
    doc.raw_tokens = out
    return out


def _lex_line(
    text: str, line: int, names: dict[tuple[int, int], tuple[int, int]]
) -> list[RawToken]:
    if not text or text.isspace():
        return []
    kw = keywords()
    out: list[RawToken] = []
    for m in _LEXEME.finditer(text):
        kind = m.lastgroup
        col = m.start()
        length = m.end() - col
        if kind == "word":
            word = m.group()
            token = names.get((line, col))
            if token is not None:
                out.append((line, col, length, token[0], token[1]))
            elif word in kw:
                out.append((line, col, length, _KEYWORD, 0))
            elif word in FAMILIES:
                out.append((line, col, length, _CLASS, _DEFAULT_LIBRARY))
            elif word in ROLES or word in ALGEBRAS:
                out.append((line, col, length, _ENUM_MEMBER, 0))
            elif word in OPTIONS or _is_option_name(text, m.end()):
                out.append((line, col, length, _PROPERTY, 0))
            elif word in ARITH_FUNCTIONS:
                out.append((line, col, length, _FUNCTION, _DEFAULT_LIBRARY))
        elif kind is not None:
            out.append((line, col, length, _TYPE_INDEX[kind], 0))
    return out


_KEYWORD = _TYPE_INDEX["keyword"]
_CLASS = _TYPE_INDEX["class"]
_ENUM_MEMBER = _TYPE_INDEX["enumMember"]
_PROPERTY = _TYPE_INDEX["property"]
_FUNCTION = _TYPE_INDEX["function"]
_DEFAULT_LIBRARY = _MOD_BIT["defaultLibrary"]


def _is_option_name(text: str, end: int) -> bool:
    rest = text[end:].lstrip()
    return rest.startswith("=") and "[" in text[:end]


def _unit_names(doc: Document, loc: Located, first: int) -> dict[tuple[int, int], tuple[int, int]]:
    """Classified names of one unit: (line relative to ``first``, col) -> (type, bits)."""
    names: dict[tuple[int, int], tuple[int, int]] = {}
    if loc.result is None:
        return names
    for found in doc.refs_in(loc):
        ref, rng = found.ref, found.range
        bits = _MOD_BIT["declaration"] if ref.is_decl else 0
        if ref.scope == "global":
            symbol = doc.symbols.get(ref.target)
            cls = _SYMBOL_CLASS.get(symbol.kind, "variable") if symbol else "variable"
        elif loc.result.symbol is not None and loc.result.symbol.kind == "deduction":
            cls = "enumMember"  # an atom: a constant of the deduction
            bits |= _MOD_BIT["readonly"]
        else:
            local = loc.result.locals.get(ref.target)
            cls = _LOCAL_CLASS.get(local.kind, "variable") if local else "variable"
            if local is not None and local.kind == "host":
                bits |= _MOD_BIT["readonly"]
            elif local is not None and local.kind == "template":
                # a template's `K : FinSet` is a type; `alpha : Real` a fixed parameter
                cls = "type" if isinstance(local.type, T.FinSet) else "parameter"
                bits |= _MOD_BIT["readonly"]
        names[(rng.line - first, rng.col)] = (_TYPE_INDEX[cls], bits)
    node = loc.unit.node
    if isinstance(node, ast.CompositionDecl) and node.label is not None:
        label = loc.unit.absolute(node.label.span)  # `composition ppca as real`
        names[(label.line - first, label.col)] = (_TYPE_INDEX["variable"], _MOD_BIT["declaration"])
    return names


def _masked_lines(doc: Document) -> list[str]:
    text = doc.text
    if not doc.file.comments:
        return doc.lines
    chars = list(text)
    for c in doc.file.comments:
        for i in range(c.offset, min(c.end_offset, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars).split("\n")


def _comment_tokens(doc: Document, c: Comment) -> list[RawToken]:
    bits = _MOD_BIT["documentation"] if c.kind == "doc" else 0
    comment = _TYPE_INDEX["comment"]
    out: list[RawToken] = []
    for i, part in enumerate(doc.text[c.offset : c.end_offset].split("\n")):
        if part:
            out.append((c.line + i, c.col if i == 0 else 0, len(part), comment, bits))
    return out
