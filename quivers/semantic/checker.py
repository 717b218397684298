"""Checking a parsed file, incrementally.

Declarations are checked in source order against the symbols declared above them
(names are in scope after their declaration). Each top-level item's result is
cached with the *signature* of every name it looked up: the looked-up symbol's
position-free info, "declared later", or "unknown". On the next check an item whose
nodes are the same objects (the parser reuses unchanged units) and whose looked-up
names have the same signatures reuses its result, so a one-line edit re-checks that
line and whatever depends on what it declares. Parts of messages that depend on
other positions (an earlier declaration's line, a did-you-mean over all names) are
filled in when the result is placed in the file. The results live in a
``FrontendCache`` (``quivers.syntax.cache``) with the parser's units.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from quivers.core.diagnostics import Diagnostic, Severity, TextEdit
from quivers.core.vocabulary import DEFAULT_ALGEBRA, NAMED_DECLARATIONS
from quivers.semantic.context import LATER, Ctx, Signature
from quivers.semantic.decls import check_declaration
from quivers.semantic.model import Analysis, RelDiag, Symbol, SymbolInfo, UnitResult
from quivers.semantic.programs import check_program
from quivers.syntax import ast
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache
from quivers.syntax.parser import parse

# FrontendCache.checks is keyed by id() of an item's nodes (an int for a declaration,
# a tuple for a program) and holds (nodes, signatures looked up, result); keeping the
# nodes alive makes equal ids mean the very same nodes.
CheckEntry = tuple[tuple[ast.Node, ...], dict[str, Signature], UnitResult]


TemplateValues = Mapping[str, Mapping[str, float | int]]


def check_text(
    text: str, cache: FrontendCache = DEFAULT_CACHE, values: TemplateValues | None = None
) -> Analysis:
    return check(parse(text, cache), cache, values)


def check(
    file: ast.SourceFile,
    cache: FrontendCache = DEFAULT_CACHE,
    values: TemplateValues | None = None,
) -> Analysis:
    """Check a parsed file, reusing the results ``cache`` holds. Never raises on user input.

    ``values`` gives template programs their parameters (program -> name -> value), as
    an instantiation does; its results depend on them, so pass a fresh ``cache``."""
    # Every declared name, with the line of its first declaration (an ErrorNode keeps
    # the name it could read). Written out rather than calling _declared_name: this
    # and the loop below run for every item on every keystroke.
    first_line: dict[str, int] = {}
    Program, Name = ast.Program, ast.Name
    for item in file.items:
        unit = item.header if isinstance(item, Program) else item
        name = getattr(unit.node, "name", None)
        if type(name) is Name and name.text and name.text not in first_line:
            first_line[name.text] = unit.line

    visible: dict[str, SymbolInfo] = {}
    symbols: dict[str, Symbol] = {}
    results: list[tuple[ast.Item, UnitResult]] = []
    later = dict(first_line)
    checks: dict[object, CheckEntry] = cache.checks
    cached = checks.get
    reused = 0
    for index, item in enumerate(file.items):
        if isinstance(item, Program):
            unit = item.header
            key: object = (id(unit.node), *[id(s.node) for s in item.steps])
        elif item.kind == "step":
            continue  # an orphan step, already reported by the parser
        else:
            unit = item
            key = id(item.node)
        # The cache keeps its nodes alive, so equal ids mean the very same nodes.
        hit = cached(key)
        if hit is not None and _same_signatures(hit[1], visible, later):
            result = hit[2]
            reused += 1
        else:
            result = _check_item(item, visible, later, cache, values)
        results.append((item, result))
        name = result.declares
        if name is not None:
            later.pop(name, None)
            if result.symbol is not None and name not in visible:
                visible[name] = result.symbol
                decl = None
                for ref in result.refs:
                    if ref.is_decl and ref.target == name:
                        decl = ref
                        break
                symbols[name] = Symbol(
                    name,
                    result.symbol,
                    unit,
                    decl.node.span if decl is not None else unit.node.span,
                    unit.doc,
                    index,
                )

    cache.stats["check_reused"] += reused
    suggester = _Suggester(symbols, cache)
    diagnostics = list(file.diagnostics)
    algebra: str | None = None
    algebra_line = 0
    exports: list[str | None] = []
    for item, result in results:
        if not (result.diags or result.algebra is not None or result.exports):
            continue
        units = [item.header, *item.steps] if isinstance(item, ast.Program) else [item]
        for diag in result.diags:
            diagnostics.append(_place(diag, units, symbols, suggester))
        if result.algebra is not None:
            unit = units[0]
            if algebra is not None:
                diagnostics.append(
                    Diagnostic(
                        "E0702",
                        f"the algebra was already selected on line {algebra_line + 1}",
                        unit.absolute(unit.node.span),
                        suggestion="keep one `composition ... as algebra` line",
                    )
                )
            else:
                algebra, algebra_line = result.algebra, unit.line
        for bare in result.exports:
            if bare is not None and bare in exports:
                unit = units[0]
                diagnostics.append(
                    Diagnostic(
                        "W0603",
                        f"'{bare}' is exported twice",
                        unit.absolute(unit.node.span),
                        Severity.WARNING,
                    )
                )
            exports.append(bare)
    if not exports and any(s.kind in ("program", "morphism", "let") for s in symbols.values()):
        start = file.items[0] if file.items else None
        if start is not None:
            unit = _item_unit(start)
            diagnostics.append(
                Diagnostic(
                    "W0601",
                    "the file exports nothing, so load() has no program to run",
                    unit.absolute(unit.node.span),
                    Severity.WARNING,
                    suggestion="add `export <program>`",
                )
            )
    diagnostics.sort(key=lambda d: (d.range.line, d.range.col))
    return Analysis(file, symbols, results, diagnostics, algebra or DEFAULT_ALGEBRA, exports)


def cache_stats(cache: FrontendCache = DEFAULT_CACHE) -> dict[str, int]:
    """Items checked afresh and reused so far."""
    return {"checked": cache.stats["checked"], "reused": cache.stats["check_reused"]}


# ------------------------------------------------------------------ internals


def _item_unit(item: ast.Item) -> ast.Unit:
    return item.header if isinstance(item, ast.Program) else item


def _declared_name(item: ast.Item) -> str | None:
    node = _item_unit(item).node
    name = getattr(node, "name", None)
    if isinstance(name, ast.Name) and not name.missing and not isinstance(node, ast.ErrorNode):
        return name.text
    if isinstance(node, ast.ErrorNode) and node.name is not None:
        return node.name.text
    return None


def _check_item(
    item: ast.Item,
    visible: dict[str, SymbolInfo],
    later: dict[str, int],
    cache: FrontendCache,
    values: TemplateValues | None = None,
) -> UnitResult:
    key: object
    if isinstance(item, ast.Program):
        nodes: tuple[ast.Node, ...] = (item.header.node, *[s.node for s in item.steps])
        key = tuple(map(id, nodes))
    else:
        nodes = (item.node,)
        key = id(item.node)  # check() builds the same keys
    checks: dict[object, CheckEntry] = cache.checks
    hit = checks.get(key)
    # The cache keeps its nodes alive, so equal ids mean the very same nodes.
    if hit is not None and _same_signatures(hit[1], visible, later):
        cache.stats["check_reused"] += 1
        return hit[2]
    ctx = Ctx(visible, later, values)
    if isinstance(item, ast.Program):
        check_program(ctx, item)
    elif not isinstance(item.node, ast.ErrorNode):
        check_declaration(ctx, item.node)
    else:
        _declare_error_node(ctx, item.node)
    if hit is None:  # else the same nodes, re-checked: their entry is replaced
        cache.admit()
    checks[key] = (nodes, ctx.accessed, ctx.result)
    cache.stats["checked"] += 1
    return ctx.result


def _declare_error_node(ctx: Ctx, node: ast.ErrorNode) -> None:
    """Keep a broken declaration's name visible so other statements still resolve it."""
    if node.name is None or node.keyword not in NAMED_DECLARATIONS:
        return
    from quivers.semantic import types as T

    ctx.result.declares = node.name.text
    ctx.ref(node.name, node.name.text, "global", is_decl=True)
    kind = node.keyword
    t = T.UNKNOWN if kind == "object" else T.Arrow(T.UNKNOWN, T.UNKNOWN)
    ctx.result.symbol = SymbolInfo(kind, t)


def _same_signatures(
    accessed: dict[str, Signature], visible: dict[str, SymbolInfo], later: dict[str, int]
) -> bool:
    for name, sig in accessed.items():
        info = visible.get(name)
        if info is None:
            if sig != (LATER if name in later else None):
                return False
        elif info is not sig and info != sig:
            return False
    return True


# -------------------------------------------------------------- did you mean


_SUGGEST_CUTOFF = 0.6  # as did_you_mean


def _best_match(word: str, pool: Iterable[str]) -> tuple[float, str] | None:
    """difflib.get_close_matches(word, pool, n=1, cutoff=0.6), keeping the score."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    best: tuple[float, str] | None = None
    for candidate in pool:
        matcher.set_seq1(candidate)
        if (
            matcher.real_quick_ratio() >= _SUGGEST_CUTOFF
            and matcher.quick_ratio() >= _SUGGEST_CUTOFF
            and matcher.ratio() >= _SUGGEST_CUTOFF
        ):
            scored = (matcher.ratio(), candidate)
            if best is None or scored > best:
                best = scored
    return best


Guess = tuple[frozenset[str], tuple[float, str] | None]


class _Suggester:
    """Did-you-mean over the file's top-level names, for every unknown name.

    Searching every name for every unknown name is quadratic, and it ran on every
    check: a file with 2,000 unknown names among 1,000 declarations took 6 s per
    keystroke. The best match of a name is remembered with the pool it was found in;
    when the pool changes, only the names added since are searched (the old best
    still wins over everything that stayed), unless the old best was removed. The
    answer is exactly difflib's.

    Kept in the cache: per kinds, the last pool of top-level names searched (so that
    an unchanged pool is the same object from one check to the next), and per
    (unknown name, kinds), the pool it was searched in and the best (score, name).
    """

    def __init__(self, symbols: dict[str, Symbol], cache: FrontendCache) -> None:
        self.symbols = symbols
        self.cache = cache
        self.pools: dict[tuple[str, ...], frozenset[str]] = {}
        self.added: dict[tuple[int, int], frozenset[str]] = {}

    def pool(self, kinds: tuple[str, ...]) -> frozenset[str]:
        pool = self.pools.get(kinds)
        if pool is None:
            names = self.symbols.items()
            pool = (
                frozenset(n for n, s in names if s.kind in kinds)
                if kinds
                else frozenset(self.symbols)
            )
            pools = self.cache.pools
            previous = pools.get(kinds)
            if previous is not None and previous == pool:
                pool = previous  # the same object as last time: guesses stay valid
            else:
                if previous is None:
                    self.cache.admit()
                pools[kinds] = pool
            self.pools[kinds] = pool
        return pool

    def guess(self, name: str, kinds: tuple[str, ...]) -> str | None:
        pool = self.pool(kinds)
        guesses: dict[tuple[str, tuple[str, ...]], Guess] = self.cache.guesses
        entry = guesses.get((name, kinds))
        if entry is not None and entry[0] is pool:
            best = entry[1]
        elif entry is not None and (entry[1] is None or entry[1][1] in pool):
            old_pool, old_best = entry
            key = (id(old_pool), id(pool))
            added = self.added.get(key)
            if added is None:
                added = self.added[key] = pool - old_pool
            best = _best_match(name, added)
            if old_best is not None and (best is None or old_best > best):
                best = old_best
        else:
            best = _best_match(name, pool)
        if entry is None:
            self.cache.admit()
        guesses[(name, kinds)] = (pool, best)
        return best[1] if best is not None else None


def _place(
    diag: RelDiag, units: list[ast.Unit], symbols: dict[str, Symbol], suggester: _Suggester
) -> Diagnostic:
    unit = units[diag.unit_index] if diag.unit_index < len(units) else units[0]
    message, suggestion, replacement = diag.message, diag.suggestion, diag.replacement
    if diag.deferred is not None:
        d = diag.deferred
        target = symbols.get(d.name)
        if d.what == "line" and target is not None:
            verb = "declared" if diag.code == "E0102" else "first declared"
            message = f"{message} ({verb} on line {target.line + 1})"
            if diag.code == "E0102":
                suggestion = suggestion or "move the declaration above this line"
        elif d.what == "suggest":
            guess = suggester.guess(d.name, d.kinds)
            if guess is not None:
                suggestion, replacement = f"did you mean '{guess}'?", guess
            elif "object" in d.kinds:
                suggestion = f"declare it: object {d.name} : Real 1"
    rng = unit.absolute(diag.span)
    fix: tuple[TextEdit, ...] = ()
    title = None
    if replacement is not None:
        fix, title = (TextEdit(rng, replacement),), f"Replace with '{replacement}'"
    elif diag.code == "E0101" and diag.deferred is not None and "object" in diag.deferred.kinds:
        top = units[0]
        start = top.absolute(ast.Span(0, 0, 0, 0, 0, 0))
        fix = (TextEdit(start, f"object {diag.deferred.name} : Real 1\n"),)
        title = f"Declare object '{diag.deferred.name}'"
    severity = Severity.WARNING if diag.warning else Severity.ERROR
    return Diagnostic(diag.code, message, rng, severity, suggestion, fix, title)
