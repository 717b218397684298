"""Cutting a file into units by its layout, and finding its comments.

Rules (also stated at the top of ``grammars/qvr.lark``): a statement starts at
column 0; an indented line under a ``program`` header is a step (a line indented
deeper than the first step continues the step above); an indented line elsewhere
continues its statement; a line continues while a bracket is open. Blank and
comment-only lines never end a block. Comments are blanked out of the text that
the parser sees (keeping every offset), and returned so that hover and the formatter
can use them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from quivers.core.vocabulary import DECLARATION_KEYWORDS as _DECL_KEYWORDS
from quivers.core.vocabulary import STEP_KEYWORDS as _STEP_KEYWORDS
from quivers.syntax.ast import Comment
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache

TAB_WIDTH = 8

# Strings are matched first so that a '#' inside one is not taken for a comment.
# `#[learnable]` (a deduction annotation) is a token, not a comment.
_ANNOTATION = "#[learnable]"
_LEXICAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|#\[learnable\]|#\{.*?\}#|#\{|#[^\n]*', re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKET = re.compile(r"[()\[\]{}]")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


@dataclass(slots=True)
class RawUnit:
    kind: str  # "declaration" | "program_header" | "step"
    first_line: int
    last_line: int
    offset: int  # of the first line's first character
    end_offset: int  # end of the last line, without its newline
    orphan: bool = False  # a step keyword at column 0, outside any program
    doc: str | None = None
    depth: int = 0  # of a step: how many `marginalize` blocks it is inside


@dataclass(slots=True)
class Layout:
    masked: str  # the text with comments blanked
    line_starts: list[int]
    units: list[RawUnit]
    comments: list[Comment]
    unterminated_block: int | None  # offset of a '#{' never closed


def line_starts_of(text: str) -> list[int]:
    starts = [0]
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = find("\n", i + 1)
    return starts


def _indent(line: str) -> int:
    col = 0
    for ch in line:
        if ch == " ":
            col += 1
        elif ch == "\t":
            col += TAB_WIDTH - col % TAB_WIDTH
        else:
            break
    return col


def _bracket_delta(line: str) -> int:
    if _BRACKET.search(line) is None:
        return 0
    if '"' in line:
        line = _STRING.sub("", line)
    count = line.count
    return count("(") + count("[") + count("{") - count(")") - count("]") - count("}")


def _mask_comments(text: str, line_starts: list[int]) -> tuple[str, list[Comment], int | None]:
    comments: list[Comment] = []
    pieces: list[str] = []
    last = 0
    unterminated: int | None = None
    for m in _LEXICAL.finditer(text):
        token = m.group()
        if token[0] == '"' or token == _ANNOTATION:
            continue
        start, end = m.span()
        if token == "#{":  # no closing '}#': the rest of the file is the comment
            unterminated = start
            end = len(text)
            token = text[start:]
        kind = "block" if token.startswith("#{") else "doc" if token.startswith("#!") else "line"
        line = bisect_right(line_starts, start) - 1
        comments.append(Comment(kind, token, line, start - line_starts[line], start, end))
        pieces.append(text[last:start])
        pieces.append(_blank(token))
        last = end
        if unterminated is not None:
            break
    if not comments:
        return text, comments, None
    pieces.append(text[last:])
    return "".join(pieces), comments, unterminated


def _blank(token: str) -> str:
    """The token with every character but newlines turned into a space."""
    if "\n" not in token:
        return " " * len(token)
    return "\n".join(" " * len(part) for part in token.split("\n"))


def _line_of(line_starts: list[int], offset: int) -> int:
    return max(bisect_right(line_starts, offset) - 1, 0)


def split(text: str, cache: FrontendCache = DEFAULT_CACHE) -> Layout:
    line_starts = line_starts_of(text)
    masked, comments, unterminated = _mask_comments(text, line_starts)
    lines = masked.split("\n")
    units: list[RawUnit] = []
    current: RawUnit | None = None
    depth = 0
    in_program = False
    body_indent: int | None = None
    # indents of the open step levels: the program body's, then one per open
    # `marginalize` block (whose body is the steps indented deeper than it)
    levels: list[int] = []
    opens_block = False  # the last step unit is a `marginalize` header

    known = cache.lines
    classify = known.get
    for number, line in enumerate(lines):
        info = classify(line, _UNSEEN)
        if info is _UNSEEN:
            info = _classify(line)
            if len(line) <= LINE_CACHE_MAX_LENGTH:  # a huge line is not kept per edit
                cache.admit(len(line))
                known[line] = info
        if info is None:
            continue
        indent, length, word, delta = info
        start = line_starts[number]
        end = start + length
        if current is not None and depth > 0 and not _starts_unit(indent, word, in_program):
            current.last_line, current.end_offset = number, end
            if delta:
                depth = max(0, depth + delta)
            continue
        depth = 0
        if indent == 0:
            in_program = word == "program"
            body_indent = None
            levels = []
            opens_block = False
            kind = "program_header" if in_program else "declaration"
            orphan = word in _STEP_KEYWORDS and word != "let"
            current = RawUnit("step" if orphan else kind, number, number, start, end, orphan)
            units.append(current)
        elif in_program and (
            body_indent is None or indent <= levels[-1] or (opens_block and indent > levels[-1])
        ):
            if body_indent is None:
                body_indent = indent
                levels = [indent]
            elif indent > levels[-1]:  # the first step of a `marginalize` body
                levels.append(indent)
            else:
                while len(levels) > 1 and indent < levels[-1]:
                    levels.pop()
            current = RawUnit("step", number, number, start, end, depth=len(levels) - 1)
            units.append(current)
            opens_block = word == "marginalize"
        elif current is not None:
            current.last_line, current.end_offset = number, end
        else:  # an indented line before any statement
            kind = "step" if word in _STEP_KEYWORDS else "declaration"
            current = RawUnit(kind, number, number, start, end, orphan=kind == "step")
            units.append(current)
        if delta:
            depth = max(0, delta)

    _attach_docs(units, comments, lines)
    return Layout(masked, line_starts, units, comments, unterminated)


# What the layout needs of a line, by its text: None for a blank line, else
# (indent, length without trailing blanks, first word, bracket balance). Lines repeat
# across edits of a file (and within it), so this is cached (FrontendCache.lines)
# like the parser's units.
LINE_CACHE_MAX_LENGTH = 1_000
_UNSEEN = (-1, -1, "", 0)


def _classify(line: str) -> tuple[int, int, str, int] | None:
    stripped = line.strip()
    if not stripped:
        return None
    indent = _indent(line) if line[0] in " \t" else 0
    word_match = _FIRST_WORD.match(stripped)
    delta = _bracket_delta(line) if _BRACKET.search(line) is not None else 0
    return (indent, len(line.rstrip()), word_match.group() if word_match else "", delta)


def _starts_unit(indent: int, word: str, in_program: bool) -> bool:
    """A line that must start a unit even while a bracket above it is unclosed."""
    if indent == 0:
        return word in _DECL_KEYWORDS
    return in_program and word in _STEP_KEYWORDS


def _attach_docs(units: list[RawUnit], comments: list[Comment], lines: list[str]) -> None:
    """A run of ``#!`` lines directly above a unit documents it."""
    docs = {c.line: c for c in comments if c.kind == "doc" and not lines[c.line].strip()}
    if not docs:
        return
    for unit in units:
        collected: list[str] = []
        line = unit.first_line - 1
        while line in docs:
            collected.append(docs[line].text[2:].strip())
            line -= 1
        if collected:
            unit.doc = "\n".join(reversed(collected))
