"""The one entry point the semantic tests use to reach the checker.

``analyse(text, cache)`` checks with a given ``FrontendCache`` (tests that count
cache hits pass a fresh one); ``diagnose(text)`` gives (code, one-based line) pairs in source order; ``messages``
the full diagnostics; ``types_of(text)`` each top-level name's type as written in
messages ("A -> B" for arrows, the structure for objects); ``program_locals`` the
types of a program's variables.
"""

from __future__ import annotations

from quivers.core.diagnostics import Diagnostic
from quivers.semantic import Analysis, check_text
from quivers.semantic import types as T
from quivers.semantic.checker import cache_stats
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache

__all__ = [
    "Analysis",
    "FrontendCache",
    "analyse",
    "cache_stats",
    "diagnose",
    "messages",
    "one",
    "program_locals",
    "show",
    "types_of",
]


def analyse(text: str, cache: FrontendCache = DEFAULT_CACHE) -> Analysis:
    return check_text(text, cache)


def diagnose(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.range.line + 1) for d in check_text(text).diagnostics]


def messages(text: str, code: str | None = None) -> list[Diagnostic]:
    return [d for d in check_text(text).diagnostics if code is None or d.code == code]


def one(text: str, code: str) -> Diagnostic:
    """The single diagnostic of ``text``, asserting that it has ``code``."""
    found = [d for d in check_text(text).diagnostics if d.code != "W0601"]
    assert [d.code for d in found] == [code], [d.render("t") for d in found]
    return found[0]


def show(t: object) -> str:
    if isinstance(t, T.Arrow):
        return t.show()
    assert isinstance(t, T.FinSet | T.Space | T.Product | T.Unknown)
    return t.structure()


def types_of(text: str) -> dict[str, str]:
    return {name: show(s.info.type) for name, s in check_text(text).symbols.items()}


def program_locals(text: str, program: str) -> dict[str, str]:
    analysis = check_text(text)
    for _item, result in analysis.results:
        if result.declares == program:
            return {n: T.show(v.type) for n, v in result.locals.items()}
    raise KeyError(program)
