"""Plain-text tables and numbers for the summaries that ``qvr sample``/``qvr fit`` print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v != v:
        return "nan"
    return f"{v:.{digits}g}"


def shape(value: Sequence[int] | None) -> str:
    if value is None:
        return "-"
    dims = tuple(int(d) for d in value)
    return (
        "()"
        if not dims
        else "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to their widest cell; the first column left-aligned, numbers right."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            parts.append(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]))
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
