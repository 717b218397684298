"""Layer 2: names, types and diagnostics. Never imports torch."""

from quivers.semantic.checker import check, check_text
from quivers.semantic.model import Analysis, Local, Symbol

__all__ = ["Analysis", "Local", "Symbol", "check", "check_text"]
