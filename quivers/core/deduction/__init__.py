"""Weighted deduction systems without torch: terms, the system's plain-data form, and
the symbolic chart (agenda-based saturation with term matching).

The checker uses this package to find unreachable start symbols and unbounded rule
cycles; the runtime (``quivers.runtime.deduction``) grounds a sentence's chart with it
and computes semiring values over the resulting hypergraph.
"""
