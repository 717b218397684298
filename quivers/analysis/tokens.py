"""Semantic tokens: every word, number, operator and comment with its class.

Names are classified by what they resolve to (an object is a type, a morphism a
function, a program variable a variable, ...), which a TextMate grammar cannot
know; keywords, numbers and comments are included too so that clients without a
TextMate grammar (Neovim) still get full highlighting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from quivers.analysis.document import Document
from quivers.core.families import FAMILIES
from quivers.core.vocabulary import ALGEBRAS, ARITH_FUNCTIONS, OPTIONS, ROLES
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
    r'(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<operator>->|<-|>>|[@~*+\-/=:])"
)
_SYMBOL_CLASS = {"object": "type", "morphism": "function", "let": "function", "program": "macro"}
_LOCAL_CLASS = {"param": "parameter", "host": "variable"}


@dataclass(frozen=True, slots=True)
class SemanticToken:
    line: int
    col: int
    length: int
    type: str
    modifiers: tuple[str, ...] = ()


def semantic_tokens(
    doc: Document, start_line: int = 0, end_line: int | None = None
) -> list[SemanticToken]:
    end = len(doc.lines) - 1 if end_line is None else end_line
    names = _classified_names(doc, start_line, end)
    kw = keywords()
    out: list[SemanticToken] = []
    comments = [c for c in doc.file.comments if c.line <= end]
    masked = _masked_lines(doc)
    for line in range(start_line, min(end, len(doc.lines) - 1) + 1):
        text = masked[line]
        for m in _LEXEME.finditer(text):
            kind = m.lastgroup
            col, length = m.start(), m.end() - m.start()
            if kind == "word":
                word = m.group()
                token = names.get((line, col))
                if token is not None:
                    out.append(SemanticToken(line, col, length, *token))
                elif word in kw:
                    out.append(SemanticToken(line, col, length, "keyword"))
                elif word in FAMILIES:
                    out.append(SemanticToken(line, col, length, "class", ("defaultLibrary",)))
                elif word in ROLES or word in ALGEBRAS:
                    out.append(SemanticToken(line, col, length, "enumMember"))
                elif word in OPTIONS or _is_option_name(text, m.end()):
                    out.append(SemanticToken(line, col, length, "property"))
                elif word in ARITH_FUNCTIONS:
                    out.append(SemanticToken(line, col, length, "function", ("defaultLibrary",)))
            elif kind is not None:
                out.append(SemanticToken(line, col, length, kind))
    for c in comments:
        out.extend(_comment_tokens(doc, c, start_line, end))
    out.sort(key=lambda t: (t.line, t.col))
    return out


def _is_option_name(text: str, end: int) -> bool:
    rest = text[end:].lstrip()
    return rest.startswith("=") and "[" in text[:end]


def _classified_names(doc: Document, start: int, end: int) -> dict[tuple[int, int], tuple]:
    names: dict[tuple[int, int], tuple] = {}
    for loc in doc.located:
        if loc.unit.end_line < start or loc.unit.line > end or loc.result is None:
            continue
        for found in doc.refs_in(loc):
            ref, rng = found.ref, found.range
            mods = ("declaration",) if ref.is_decl else ()
            if ref.scope == "global":
                symbol = doc.symbols.get(ref.target)
                cls = _SYMBOL_CLASS.get(symbol.kind, "variable") if symbol else "variable"
            else:
                local = loc.result.locals.get(ref.target)
                cls = _LOCAL_CLASS.get(local.kind, "variable") if local else "variable"
                if local is not None and local.kind == "host":
                    mods = (*mods, "readonly")
            names[(rng.line, rng.col)] = (cls, mods)
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


def _comment_tokens(doc: Document, c: Comment, start: int, end: int) -> list[SemanticToken]:
    mods = ("documentation",) if c.kind == "doc" else ()
    out: list[SemanticToken] = []
    offset = c.offset
    for i, part in enumerate(doc.text[c.offset : c.end_offset].split("\n")):
        line = c.line + i
        col = c.col if i == 0 else 0
        if start <= line <= end and part:
            out.append(SemanticToken(line, col, len(part), "comment", mods))
        offset += len(part) + 1
    return out
