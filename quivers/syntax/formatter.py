"""The canonical QVR layout.

Formatting re-spaces each code line from its tokens (one space around binary
operators, none inside brackets, ``=`` tight inside an options list), indents steps
by four spaces and continuation lines by four more, keeps every comment, and folds
runs of blank lines into one. In a ``deduction``, its parts (``atoms``, ``rule``,
``lexicon``) are indented by four spaces and lexicon entries by eight. Spacing depends only on the tokens and indentation
only on the statement structure, so formatting is idempotent. A file with syntax
errors is not formatted (``format_source`` returns None): guessing at broken code
could lose text.
"""

from __future__ import annotations

import re

from quivers.core.vocabulary import DEDUCTION_KEYWORDS, STEP_KEYWORDS
from quivers.syntax import layout
from quivers.syntax.parser import parse

INDENT = "    "
_TOKEN = re.compile(
    r"#\[learnable\]|\|-|⊢"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?"
    r"|[A-Za-z_][A-Za-z0-9_]*"
    r"|->|<-|>>|[@~*+\-/=:,()\[\]{}]"
    r"|\S"
)
_OPENERS = "([{"
_CLOSERS = ")]}"
_BINARY = {"->", "<-", ">>", "@", "~", ":", "*", "+", "/", "-", "="}
_SYNTAX_CODES = {"E0001", "E0002", "E0003", "E0004", "E0005", "E0006"}


def format_source(text: str) -> str | None:
    """The canonical form of ``text``, or None when it has syntax errors."""
    file = parse(text)
    if any(d.code in _SYNTAX_CODES for d in file.diagnostics):
        return None
    lay = layout.split(text)
    masked = lay.masked.split("\n")
    original = text.split("\n")
    trailing = {
        c.line: c.text for c in lay.comments if c.kind != "block" and masked[c.line].strip()
    }
    block_lines = _block_comment_lines(text, lay)

    role: dict[int, tuple[str, int]] = {}  # line -> (kind, indent)
    square: dict[int, int] = {}  # line -> '[' depth open at its start (options may wrap)
    for unit in lay.units:
        deduction = masked[unit.first_line].startswith("deduction")
        base = 1 + unit.depth if unit.kind == "step" else 0
        open_squares = 0
        for number in range(unit.first_line, unit.last_line + 1):
            if masked[number].strip():
                depth = base if number == unit.first_line else base + 1
                if deduction and number != unit.first_line:
                    first = masked[number].split(None, 1)[0]
                    depth = 1 if first in DEDUCTION_KEYWORDS else 2
                role.setdefault(number, ("code", depth))
                square.setdefault(number, open_squares)
                open_squares = _respace(masked[number], open_squares)[1]

    out: list[str] = []
    next_unit_indent = _next_unit_indents(lay, len(original))
    for number, raw in enumerate(original):
        if number in block_lines:
            out.append(raw.rstrip())
            continue
        if number in role:
            _, depth = role[number]
            formatted = INDENT * depth + _respace(masked[number], square[number])[0]
            if number in trailing:
                formatted += "  " + trailing[number].rstrip()
            out.append(formatted)
        elif raw.strip():  # a comment-only line
            out.append(INDENT * next_unit_indent[number] + raw.strip())
        else:
            out.append("")
    return _fold_blank_lines(out)


def _respace(code: str, square_depth: int = 0) -> tuple[str, int]:
    """The line re-spaced, and the '[' depth open at its end."""
    tokens = _TOKEN.findall(code)
    # `let`/`score` arithmetic has no options: a '[' after a name is indexing, `beta[i]`
    arithmetic = bool(tokens) and tokens[0] in ("let", "score")
    pieces: list[str] = []
    prev: str | None = None
    parens = 0  # `=` inside parentheses is a keyword argument: tight, as in options
    for tok in tokens:
        index = arithmetic and tok == "[" and prev is not None and _is_word(prev)
        if (
            prev is not None
            and not index
            and _space_between(prev, tok, square_depth + parens, pieces)
        ):
            pieces.append(" ")
        pieces.append(tok)
        if tok == "[":
            square_depth += 1
        elif tok == "]":
            square_depth = max(0, square_depth - 1)
        elif tok == "(":
            parens += 1
        elif tok == ")":
            parens = max(0, parens - 1)
        prev = tok
    return "".join(pieces), square_depth


def _space_between(prev: str, tok: str, bracket_depth: int, pieces: list[str]) -> bool:
    if prev in _OPENERS or tok in _CLOSERS or tok == ",":
        return False
    if prev == ",":
        return True
    if tok == "=" or prev == "=":
        return bracket_depth == 0
    if tok == "(":
        # a call is tight; a step keyword before a tuple is not: `return (a, b)`
        return not (_is_word(prev) and prev not in STEP_KEYWORDS) and prev not in _CLOSERS
    return not (prev == "-" and _is_unary(pieces))


def _is_unary(pieces: list[str]) -> bool:
    """Whether the '-' just emitted (last in ``pieces``) is a sign, not a subtraction."""
    before = [p for p in pieces[:-1] if p != " "]
    if not before:
        return True
    last = before[-1]
    return last in _BINARY or last in _OPENERS or last == "," or last in ("return",)


def _is_word(tok: str) -> bool:
    return tok[:1].isalpha() or tok[:1] == "_"


def _block_comment_lines(text: str, lay: layout.Layout) -> set[int]:
    lines: set[int] = set()
    for c in lay.comments:
        if c.kind == "block":
            end = c.line + text.count("\n", c.offset, c.end_offset)
            if end > c.line:
                lines.update(range(c.line, end + 1))
    return lines


def _next_unit_indents(lay: layout.Layout, count: int) -> list[int]:
    """For each line, the indent depth of the next unit below it (comments follow it)."""
    depth = [0] * (count + 1)
    starts = {u.first_line: (1 + u.depth if u.kind == "step" else 0) for u in lay.units}
    current = 0
    for line in range(count - 1, -1, -1):
        if line in starts:
            current = starts[line]
        depth[line] = current
    return depth


def _fold_blank_lines(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""
