"""Diagnostics as plain data: what every layer reports and every front end prints.

Positions are zero-based lines and columns, as in the Language Server Protocol;
the command line adds one when it prints ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Range:
    line: int
    col: int
    end_line: int
    end_col: int
    offset: int = 0
    end_offset: int = 0

    def contains(self, line: int, col: int) -> bool:
        if (line, col) < (self.line, self.col):
            return False
        return (line, col) <= (self.end_line, self.end_col)


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace ``range`` by ``new_text``; a quick fix is a list of these."""

    range: Range
    new_text: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    range: Range
    severity: Severity = Severity.ERROR
    suggestion: str | None = None
    # Machine-applicable fix for editors (a did-you-mean rename, a missing declaration).
    fix: tuple[TextEdit, ...] = field(default=())
    fix_title: str | None = None

    def render(self, path: str) -> str:
        text = (
            f"{path}:{self.range.line + 1}:{self.range.col + 1}: "
            f"{self.severity.value}[{self.code}]: {self.message}"
        )
        if self.suggestion:
            text += f"; {self.suggestion}"
        return text

    def to_json(self, path: str) -> dict[str, object]:
        r = self.range
        return {
            "file": path,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "suggestion": self.suggestion,
            "range": {
                "start": {"line": r.line, "col": r.col, "offset": r.offset},
                "end": {"line": r.end_line, "col": r.end_col, "offset": r.end_offset},
            },
        }
