"""The front end's memo tables, in one object with one eviction policy.

Re-analysing a file after a keystroke is fast because almost everything is
remembered from the previous analysis: each line's layout class, each unit's parse
(by kind and text), each item's check result (by the identity of its nodes, with the
signatures of the names it looked up), the did-you-mean pools and answers, and each
statement's semantic tokens. A ``FrontendCache`` holds all of these. ``parse``,
``check``, ``check_text`` and ``Document`` take one (``cache=``); without it they use
``DEFAULT_CACHE``, so a script sees one process-wide cache, the language server owns
its own, and a test makes a fresh one to count exactly its own work.

Eviction: the tables are bounded together, by the number of entries and by the
characters of text held as keys. When a new entry would pass either bound, every
table is emptied at once. Results refer to nodes and nodes to parses, so emptying
one table alone would keep dead entries in the others (or, for the tables keyed by
``id`` of a node, could let a recycled id find a stale entry); emptying them together
keeps them consistent, and the next check rebuilds what the current text needs.

The tables are plain dicts owned by the layer that fills them; this module only
knows their sizes (it is below ``semantic`` and ``analysis``, so their values are
typed loosely here).

Threads: the language server gives each open document its own cache (dropped on
didClose, which frees that document's entries at once) and the workspace index
another, so a cache is used by one thread at a time. An analysis may still be
interrupted at any bytecode: every entry is stored in one step after it is computed,
so a reader sees a whole entry or none; the size counters may drift by an entry or
two, which only moves the next emptying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 200_000
# Also bound the text held: every edit of a huge unit adds a new key.
MAX_CHARS = 20_000_000


@dataclass(eq=False)
class FrontendCache:
    max_entries: int = MAX_ENTRIES
    max_chars: int = MAX_CHARS

    # layout: line text -> (indent, length, first word, bracket balance) or None
    lines: dict[str, Any] = field(default_factory=dict)
    # parser: (unit kind, unit text) -> (node, relative syntax diagnostics)
    units: dict[tuple[str, str], Any] = field(default_factory=dict)
    # checker: ids of an item's nodes -> (nodes, looked-up signatures, UnitResult)
    checks: dict[object, Any] = field(default_factory=dict)
    # checker, did-you-mean: symbol kinds -> the last pool of names searched
    pools: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict)
    # checker, did-you-mean: (unknown name, kinds) -> (pool, best (score, name))
    guesses: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)
    # semantic tokens: a statement's identity and placement -> its tokens
    tokens: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    # Counters for tests and benchmarks: parsed/reused units, checked/reused items.
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "parsed": 0,
            "parse_reused": 0,
            "checked": 0,
            "check_reused": 0,
            "cleared": 0,
        }
    )
    entries: int = 0
    chars: int = 0

    def admit(self, chars: int = 0) -> None:
        """Account for one new entry holding ``chars`` characters of key text; empty
        every table first if it would not fit."""
        if self.entries + 1 > self.max_entries or self.chars + chars > self.max_chars:
            self.clear()
            self.stats["cleared"] += 1
        self.entries += 1
        self.chars += chars

    def clear(self) -> None:
        """Forget everything (the counters in ``stats`` are kept)."""
        for table in (self.lines, self.units, self.checks, self.pools, self.guesses, self.tokens):
            table.clear()
        self.entries = 0
        self.chars = 0


DEFAULT_CACHE = FrontendCache()
