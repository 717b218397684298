"""Editor-facing queries as plain data: no torch, no LSP types.

Start from ``Document(text)``; each module answers one kind of question about it.
"""

from quivers.analysis.document import Document

__all__ = ["Document"]
