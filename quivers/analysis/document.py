"""One analysed document and the position lookups every editor query starts from.

Positions are zero-based (line, column) with columns in code points; the language
server converts to and from the client's UTF-16 columns.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from quivers.core.diagnostics import Range
from quivers.semantic import check_text
from quivers.semantic.model import Analysis, NameRef, Symbol, UnitResult
from quivers.syntax import ast
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache


@dataclass(frozen=True, slots=True)
class Located:
    """A unit of the document with the item and check result it belongs to."""

    item: ast.Item
    result: UnitResult | None
    unit: ast.Unit
    unit_index: int  # 0: a declaration or a program header; i: the i-th step


@dataclass(frozen=True, slots=True)
class RefAt:
    ref: NameRef
    range: Range
    where: Located


class Document:
    """One text, analysed with ``cache`` (the process-wide default unless given: the
    language server passes its own)."""

    def __init__(
        self,
        text: str,
        uri: str = "",
        version: int | None = None,
        cache: FrontendCache = DEFAULT_CACHE,
    ) -> None:
        self.text = text
        self.uri = uri
        self.version = version
        self.cache = cache
        self.analysis: Analysis = check_text(text, cache)
        self.lines = text.split("\n")
        # Every semantic token of the document, sorted; filled by analysis.tokens.
        self.raw_tokens: list[tuple[int, int, int, int, int]] | None = None

    @property
    def file(self) -> ast.SourceFile:
        return self.analysis.file

    @property
    def symbols(self) -> dict[str, Symbol]:
        return self.analysis.symbols

    # ----------------------------------------------------------- units

    @cached_property
    def located(self) -> list[Located]:
        results = {id(item): result for item, result in self.analysis.results}
        out: list[Located] = []
        for item in self.file.items:
            result = results.get(id(item))
            if isinstance(item, ast.Program):
                out.append(Located(item, result, item.header, 0))
                out.extend(Located(item, result, s, i) for i, s in enumerate(item.steps, 1))
            else:
                out.append(Located(item, result, item, 0))
        return out

    @cached_property
    def _starts(self) -> list[int]:
        return [loc.unit.line for loc in self.located]

    def unit_at(self, line: int) -> Located | None:
        """The unit whose lines include ``line`` (or the nearest one above it)."""
        i = bisect.bisect_right(self._starts, line) - 1
        if i < 0:
            return None
        loc = self.located[i]
        return loc if line <= loc.unit.end_line else None

    def result_of(self, item: ast.Item) -> UnitResult | None:
        for it, result in self.analysis.results:
            if it is item:
                return result
        return None

    # ----------------------------------------------------------- names

    def refs_in(self, loc: Located) -> Iterator[RefAt]:
        if loc.result is None:
            return
        for ref in loc.result.refs:
            if ref.unit_index == loc.unit_index:
                yield RefAt(ref, loc.unit.absolute(ref.node.span), loc)

    def ref_at(self, line: int, col: int) -> RefAt | None:
        loc = self.unit_at(line)
        if loc is None:
            return None
        for found in self.refs_in(loc):
            if _touches(found.range, line, col):
                return found
        return None

    def all_refs(self) -> Iterator[RefAt]:
        for loc in self.located:
            yield from self.refs_in(loc)

    def occurrences(self, target: RefAt) -> list[RefAt]:
        """Every use and declaration of the name ``target`` stands for."""
        ref = target.ref
        if ref.scope == "local":
            return [
                r
                for loc in self.located
                if loc.item is target.where.item
                for r in self.refs_in(loc)
                if r.ref.scope == "local" and r.ref.target == ref.target
            ]
        return [
            r for r in self.all_refs() if r.ref.scope == "global" and r.ref.target == ref.target
        ]

    # ----------------------------------------------------------- nodes

    def nodes_at(self, line: int, col: int) -> list[tuple[ast.Node, Range, Located]]:
        """Syntax nodes containing the position, outermost first."""
        loc = self.unit_at(line)
        if loc is None:
            return []
        found: list[tuple[ast.Node, Range, Located]] = []
        for node in ast.walk(loc.unit.node):
            rng = loc.unit.absolute(node.span)
            if _touches(rng, line, col):
                found.append((node, rng, loc))
        return found


def _touches(rng: Range, line: int, col: int) -> bool:
    return rng.contains(line, col)
