"""What the checker produces: symbols, per-unit results and the whole analysis.

Results are relative to their units (like the syntax tree) so they can be reused
across edits; ``Analysis`` places them in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quivers.core.diagnostics import Diagnostic, TextEdit
from quivers.semantic import types as T
from quivers.semantic.types import Arrow, Type
from quivers.syntax import ast

Typed = Type | Arrow


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """What a declaration contributes to the environment (position-free, cacheable)."""

    kind: str  # object | morphism | let | program
    type: Typed
    role: str | None = None
    family: str | None = None
    replicate: int | None = None
    options: tuple[tuple[str, str], ...] = ()  # as written, for hover
    # a plate program's value type when it returns something other than its declared
    # codomain (docs/language.md, 10.7); uses of the program see dom -> returns
    returns: T.Type | None = None
    # a template program's typed parameters, (name, kind) in order: `gmm(alpha : Real)`
    template: tuple[tuple[str, str], ...] = ()
    # a relation between finite sets (latent, observed matrix, family-less kernel, or a
    # composite of those): its matrix can be read by rows in arithmetic, `rel[ids]`
    relation: bool = False
    # a program returning the state its last `marginalize` block sums out: a forward
    # cell, usable only as a scan cell (docs/language.md, "Marginalisation")
    forward: bool = False

    def arrow(self) -> T.Arrow | None:
        """The arrow other expressions see (a plate program's: to what it returns)."""
        if not isinstance(self.type, T.Arrow):
            return None
        return T.Arrow(self.type.dom, self.returns) if self.returns is not None else self.type


@dataclass(eq=False, slots=True)
class Symbol:
    """A top-level name, placed in the file."""

    name: str
    info: SymbolInfo
    unit: ast.Unit
    name_span: ast.Span
    doc: str | None
    index: int  # position among top-level items

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def line(self) -> int:
        return self.unit.line + self.name_span.line


@dataclass(frozen=True, slots=True)
class Local:
    """A name bound inside a program: a parameter, a site, a let, a score, host data."""

    name: str
    kind: str  # param | sample | observe | let | score | host | marginal | forward
    type: Type
    unit_index: int  # 0: the header, i: the i-th step
    span: ast.Span
    is_global: bool = False
    # for a name of `sample (a, b) <- ...`: the site whose draw it is one factor of
    site: str | None = None


@dataclass(frozen=True, slots=True)
class Deferred:
    """Part of a message that depends on other units' positions or on all names.

    ``line``: append the current declaration line of ``name``;
    ``suggest``: look for a close name among top-level symbols of ``kinds``.
    """

    what: str  # "line" | "suggest"
    name: str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelDiag:
    code: str
    message: str
    span: ast.Span
    unit_index: int = 0
    suggestion: str | None = None
    replacement: str | None = None  # a quick fix: replace the span by this text
    deferred: Deferred | None = None
    warning: bool = False


@dataclass(frozen=True, slots=True)
class NameRef:
    """A use (or the declaration) of a name, for navigation."""

    unit_index: int
    node: ast.Name
    target: str
    scope: str  # "global" | "local"
    is_decl: bool = False


@dataclass(eq=False, slots=True)
class UnitResult:
    """The checker's findings for one declaration or one whole program."""

    symbol: SymbolInfo | None = None
    declares: str | None = None
    diags: list[RelDiag] = field(default_factory=list)
    types: dict[int, Typed] = field(default_factory=dict)  # id(node) -> type
    refs: list[NameRef] = field(default_factory=list)
    locals: dict[str, Local] = field(default_factory=dict)
    exports: list[str | None] = field(default_factory=list)
    algebra: str | None = None


@dataclass(eq=False)
class Analysis:
    """Everything known about one file after checking."""

    file: ast.SourceFile
    symbols: dict[str, Symbol]
    results: list[tuple[ast.Item, UnitResult]]
    diagnostics: list[Diagnostic]
    algebra: str
    exports: list[str | None]

    @property
    def ok(self) -> bool:
        return not any(d.severity.value == "error" for d in self.diagnostics)

    def item_units(self, item: ast.Item) -> list[ast.Unit]:
        if isinstance(item, ast.Program):
            return [item.header, *item.steps]
        return [item]


def edit(unit: ast.Unit, span: ast.Span, text: str) -> TextEdit:
    return TextEdit(unit.absolute(span), text)
