"""The checking context of one unit: name lookups (recorded for the cache) and reports."""

from __future__ import annotations

from collections.abc import Mapping

from quivers.semantic.model import Deferred, Local, NameRef, RelDiag, SymbolInfo, Typed, UnitResult
from quivers.syntax import ast

LATER = "later"

# What a unit's result depends on, per name it looked up: the symbol's info, LATER
# (declared further down) or None (not declared at all).
Signature = SymbolInfo | str | None


class Ctx:
    def __init__(
        self,
        visible: Mapping[str, SymbolInfo],
        later: Mapping[str, int],
        values: Mapping[str, Mapping[str, float | int]] | None = None,
    ) -> None:
        self._visible = visible
        self._later = later
        # the values of template parameters, by program (an instantiation's check)
        self.values: Mapping[str, Mapping[str, float | int]] = values or {}
        # a template's finite-set parameters, in scope in its own program only, and
        # the values given for its parameters
        self.sets: dict[str, SymbolInfo] = {}
        self.given: Mapping[str, float | int] = {}
        self.accessed: dict[str, Signature] = {}
        self.result = UnitResult()
        self.unit_index = 0
        self.locals: dict[str, Local] = self.result.locals
        # values that are not in scope at this step although bound (a marginalize
        # block's summed-out values after the block): name -> why, for E0542/E0545
        self.out_of_scope: dict[str, tuple[str, str]] = {}
        self.scan_cell = False  # typing the cell of a scan: a forward cell may stand here
        self.binary_marginals: set[str] = set()  # summed-out Bernoulli values (0 or 1)

    # ------------------------------------------------------------- lookups

    def lookup(self, name: str) -> SymbolInfo | str | None:
        if name in self.sets:  # local to this program: not a dependency on other items
            return self.sets[name]
        info = self._visible.get(name)
        sig: Signature = info if info is not None else (LATER if name in self._later else None)
        self.accessed[name] = sig
        return sig

    def resolve(self, node: ast.Name, kinds: tuple[str, ...], what: str) -> SymbolInfo | None:
        """Look up a top-level name of one of ``kinds``, reporting what goes wrong."""
        if node.missing:
            return None
        if node.text in self.sets and "object" in kinds:  # a template's `K : FinSet`
            self.ref(node, node.text, "local")
            return self.sets[node.text]
        found = self.lookup(node.text)
        if isinstance(found, SymbolInfo):
            self.ref(node, node.text, "global")
            if found.kind in kinds:
                return found
            self.error(
                "E0104",
                f"'{node.text}' is {_article(found.kind)}, not {_article(what)}",
                node.span,
            )
            return None
        if found == LATER:
            self.error(
                "E0102",
                f"{what} '{node.text}' is used before its declaration",
                node.span,
                deferred=Deferred("line", node.text),
            )
            return None
        self.error(
            "E0101",
            f"unknown {what} '{node.text}'",
            node.span,
            deferred=Deferred("suggest", node.text, kinds),
        )
        return None

    # ------------------------------------------------------------- reports

    def error(
        self,
        code: str,
        message: str,
        span: ast.Span,
        suggestion: str | None = None,
        replacement: str | None = None,
        deferred: Deferred | None = None,
        warning: bool = False,
    ) -> None:
        self.result.diags.append(
            RelDiag(
                code,
                message,
                span,
                self.unit_index,
                suggestion,
                replacement,
                deferred,
                warning,
            )
        )

    def warn(self, code: str, message: str, span: ast.Span, suggestion: str | None = None) -> None:
        self.error(code, message, span, suggestion, warning=True)

    def typed(self, node: ast.Node, t: Typed) -> Typed:
        self.result.types[id(node)] = t
        return t

    def ref(self, node: ast.Name, target: str, scope: str, is_decl: bool = False) -> None:
        self.result.refs.append(NameRef(self.unit_index, node, target, scope, is_decl))


def _article(kind: str) -> str:
    word = {"let": "named expression"}.get(kind, kind)
    return ("an " if word[0] in "aeiou" else "a ") + word
