"""The front-end cache: one object per owner, one eviction policy for every table."""

from __future__ import annotations

from quivers.analysis import Document
from quivers.semantic import check_text
from quivers.semantic.checker import cache_stats as check_stats
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache

from .helpers import cache_stats, parse

TEXT = (
    "object A : Real 2\n"
    "morphism f : A -> A [role=kernel] ~ Normal\n"
    "let g = f >> nope_g\n"
    "program p : A -> A\n"
    "    sample y <- g\n"
    "    return y\n"
    "export p\n"
)


def _tables(cache: FrontendCache) -> dict[str, int]:
    names = ("lines", "units", "checks", "pools", "guesses", "tokens")
    return {n: len(getattr(cache, n)) for n in names}


def test_every_table_fills_in_the_cache_it_is_given():
    cache = FrontendCache()
    from quivers.analysis.tokens import semantic_tokens

    semantic_tokens(Document(TEXT, cache=cache))
    assert all(_tables(cache).values()), _tables(cache)  # the did-you-mean too (nope_g)
    assert cache.entries == sum(_tables(cache).values())


def test_caches_are_independent():
    a, b = FrontendCache(), FrontendCache()
    first = parse(TEXT, a)
    again = parse(TEXT, a)
    other = parse(TEXT, b)
    assert again.units()[1].node is first.units()[1].node
    assert other.units()[1].node is not first.units()[1].node
    assert cache_stats(a)["parsed"] == cache_stats(b)["parsed"] == len(first.units())
    assert check_stats(b)["checked"] == 0
    check_text(TEXT, b)
    assert check_stats(b)["checked"] > 0 and check_stats(a)["checked"] == 0


def test_the_default_cache_serves_calls_without_one():
    before = cache_stats(DEFAULT_CACHE)["parsed"]
    parse("object Only_in_the_default_cache : Real 1\n")
    assert cache_stats(DEFAULT_CACHE)["parsed"] == before + 1
    assert cache_stats()["parsed"] == before + 1


def test_one_bound_empties_every_table_together():
    cache = FrontendCache(max_entries=40)
    check_text(TEXT, cache)
    assert 0 < cache.entries <= 40 and cache.stats["cleared"] == 0
    for k in range(30):  # each edit adds a line, a unit and a check
        check_text(TEXT.replace("Real 2", f"Real {k + 3}"), cache)
        assert cache.entries <= 40
        assert cache.entries == sum(_tables(cache).values())
    assert cache.stats["cleared"] > 0
    # Emptied together: no check result outlives the units its nodes came from.
    live = {id(u.node) for u in parse(TEXT, FrontendCache()).units()}
    kept_nodes = {id(n) for entry in cache.checks.values() for n in entry[0]}
    unit_nodes = {id(node) for node, _ in cache.units.values()}
    assert kept_nodes <= unit_nodes and not kept_nodes & live


def test_character_bound_counts_the_text_held():
    cache = FrontendCache(max_chars=5_000)
    for k in range(20):
        parse(f"let g{k} = " + " @ ".join(["f"] * 400) + "\n", cache)
        assert cache.chars <= 5_000
    assert cache.stats["cleared"] > 0


def test_a_cleared_cache_gives_the_same_answers():
    cache = FrontendCache(max_entries=25)
    texts = [TEXT.replace("nope_g", f"nope_{k}") for k in range(8)]
    for text in texts:
        warm = check_text(text, cache).diagnostics
        assert warm == check_text(text, FrontendCache()).diagnostics
