"""Go to definition, references, document highlights and rename."""

from __future__ import annotations

import re

from quivers.analysis.document import Document, RefAt
from quivers.core.diagnostics import Range, TextEdit
from quivers.core.families import FAMILIES
from quivers.syntax.grammar import keywords

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def definition(doc: Document, line: int, col: int) -> list[Range]:
    found = doc.ref_at(line, col)
    if found is None:
        return []
    return [r.range for r in doc.occurrences(found) if r.ref.is_decl][:1]


def references(doc: Document, line: int, col: int, include_declaration: bool = True) -> list[Range]:
    found = doc.ref_at(line, col)
    if found is None:
        return []
    return [r.range for r in doc.occurrences(found) if include_declaration or not r.ref.is_decl]


def highlights(doc: Document, line: int, col: int) -> list[tuple[Range, bool]]:
    """Occurrences of the name under the cursor; True marks the declaration (a write)."""
    found = doc.ref_at(line, col)
    if found is None:
        return []
    return [(r.range, r.ref.is_decl) for r in doc.occurrences(found)]


def prepare_rename(doc: Document, line: int, col: int) -> tuple[Range, str] | None:
    found = doc.ref_at(line, col)
    if found is None or not any(r.ref.is_decl for r in doc.occurrences(found)):
        return None
    return found.range, found.ref.target


class RenameError(ValueError):
    pass


def rename(doc: Document, line: int, col: int, new_name: str) -> list[TextEdit]:
    found = doc.ref_at(line, col)
    if found is None:
        raise RenameError("nothing to rename here")
    if not _IDENT.match(new_name):
        raise RenameError(f"'{new_name}' is not a valid name")
    if new_name in keywords() or new_name in FAMILIES:
        raise RenameError(f"'{new_name}' is reserved")
    if _clashes(doc, found, new_name):
        raise RenameError(f"'{new_name}' is already used in this scope")
    return [TextEdit(r.range, new_name) for r in doc.occurrences(found)]


def _clashes(doc: Document, found: RefAt, new_name: str) -> bool:
    if found.ref.scope == "global":
        return new_name in doc.symbols
    result = found.where.result
    return result is not None and new_name in result.locals
