"""The one helper the analysis tests use.

``doc(text)`` analyses a document; ``at(text)`` does the same for a text holding one
cursor marker (``|`` or ``$0``) and returns ``(Document, line, col)`` with the marker
removed. ``REFERENCE`` is the reference program, ``examples()`` every gallery example,
and ``with_broken_neighbours(text)`` the same text with broken statements around it.
"""

from __future__ import annotations

from pathlib import Path

from quivers.analysis import Document
from quivers.core.diagnostics import Range

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "source"
BROKEN = ROOT / "tests" / "data" / "broken"
REFERENCE = (EXAMPLES / "vanilla_rnn_lm.qvr").read_text()

# Statements that do not parse or do not check, to surround working code with.
BROKEN_LINES = (
    "object Broken{k} : FinSet",
    "morphism bad{k} : Nope -> [role=",
    "let oops{k} = ) >> (",
)


def doc(text: str) -> Document:
    return Document(text, "file:///test.qvr", 1)


def at(text: str) -> tuple[Document, int, int]:
    """The document without its cursor marker, and the marker's (line, col)."""
    marker = "$0" if "$0" in text else "|"
    index = text.index(marker)
    clean = text[:index] + text[index + len(marker) :]
    line = text.count("\n", 0, index)
    col = index - (text.rfind("\n", 0, index) + 1)
    return doc(clean), line, col


def where(text: str, needle: str, occurrence: int = 0, offset: int = 0) -> tuple[int, int]:
    """(line, col) of the ``occurrence``-th ``needle`` in ``text``, plus ``offset``."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(needle, start + 1)
    start += offset
    return text.count("\n", 0, start), start - (text.rfind("\n", 0, start) + 1)


def text_of(d: Document, rng: Range) -> str:
    """The source text a range covers."""
    if rng.line == rng.end_line:
        return d.lines[rng.line][rng.col : rng.end_col]
    parts = [d.lines[rng.line][rng.col :]]
    parts += d.lines[rng.line + 1 : rng.end_line]
    parts.append(d.lines[rng.end_line][: rng.end_col])
    return "\n".join(parts)


def examples() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(EXAMPLES.glob("*.qvr"))}


def with_broken_neighbours(text: str) -> str:
    """``text`` with a broken statement before each top-level statement but the first
    (never inside a program body) and more broken lines at the end."""
    out: list[str] = []
    lines = text.split("\n")
    k = 0
    for i, line in enumerate(lines):
        starts = i > 0 and line[:1].isalpha() and not line.startswith("#")
        if starts:
            out.append(BROKEN_LINES[k % 3].format(k=k))
            k += 1
        out.append(line)
    out.append(BROKEN_LINES[0].format(k=k))
    return "\n".join(out)
