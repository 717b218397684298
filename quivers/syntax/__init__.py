"""Layer 1: text to syntax tree. Depends on lark only; never raises on user input."""

from quivers.syntax.ast import SourceFile
from quivers.syntax.parser import parse

__all__ = ["SourceFile", "parse"]
