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
from dataclasses import dataclass

from quivers.syntax.ast import Comment

TAB_WIDTH = 8

# Strings are matched first so that a '#' inside one is not taken for a comment.
_LEXICAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|#\{.*?\}#|#\{|#[^\n]*', re.DOTALL)
_OPENERS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
_STEP_KEYWORDS = ("sample", "observe", "let", "score", "return")
_DECL_KEYWORDS = ("object", "morphism", "let", "program", "export", "composition")
_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True)
class RawUnit:
    kind: str  # "declaration" | "program_header" | "step"
    first_line: int
    last_line: int
    offset: int  # of the first line's first character
    end_offset: int  # end of the last line, without its newline
    orphan: bool = False  # a step keyword at column 0, outside any program
    doc: str | None = None


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
    if not any(c in line for c in "()[]{}"):
        return 0
    if '"' in line:
        line = re.sub(r'"(?:[^"\\\n]|\\.)*"', "", line)
    return sum(_OPENERS.get(c, 0) for c in line)


def _mask_comments(text: str, line_starts: list[int]) -> tuple[str, list[Comment], int | None]:
    comments: list[Comment] = []
    pieces: list[str] = []
    last = 0
    unterminated: int | None = None
    for m in _LEXICAL.finditer(text):
        token = m.group()
        if token[0] == '"':
            continue
        start, end = m.span()
        if token == "#{":  # no closing '}#': the rest of the file is the comment
            unterminated = start
            end = len(text)
            token = text[start:]
        kind = "block" if token.startswith("#{") else "doc" if token.startswith("#!") else "line"
        line = _line_of(line_starts, start)
        comments.append(Comment(kind, token, line, start - line_starts[line], start, end))
        pieces.append(text[last:start])
        pieces.append(re.sub(r"[^\n]", " ", token))
        last = end
        if unterminated is not None:
            break
    if not comments:
        return text, comments, None
    pieces.append(text[last:])
    return "".join(pieces), comments, unterminated


def _line_of(line_starts: list[int], offset: int) -> int:
    lo, hi = 0, len(line_starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if line_starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def split(text: str) -> Layout:
    line_starts = line_starts_of(text)
    masked, comments, unterminated = _mask_comments(text, line_starts)
    lines = masked.split("\n")
    units: list[RawUnit] = []
    current: RawUnit | None = None
    depth = 0
    in_program = False
    body_indent: int | None = None

    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        start = line_starts[number]
        end = start + len(line.rstrip())
        indent = _indent(line)
        word_match = _FIRST_WORD.match(stripped)
        word = word_match.group() if word_match else ""
        if current is not None and depth > 0 and not _starts_unit(indent, word, in_program):
            current.last_line, current.end_offset = number, end
            depth = max(0, depth + _bracket_delta(line))
            continue
        depth = 0
        if indent == 0:
            in_program = word == "program"
            body_indent = None
            kind = "program_header" if in_program else "declaration"
            orphan = word in _STEP_KEYWORDS and word != "let"
            current = RawUnit("step" if orphan else kind, number, number, start, end, orphan)
            units.append(current)
        elif in_program and (body_indent is None or indent <= body_indent):
            body_indent = indent if body_indent is None else body_indent
            current = RawUnit("step", number, number, start, end)
            units.append(current)
        elif current is not None:
            current.last_line, current.end_offset = number, end
        else:  # an indented line before any statement
            kind = "step" if word in _STEP_KEYWORDS else "declaration"
            current = RawUnit(kind, number, number, start, end, orphan=kind == "step")
            units.append(current)
        depth = max(0, depth + _bracket_delta(line))

    _attach_docs(units, comments, lines)
    return Layout(masked, line_starts, units, comments, unterminated)


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
