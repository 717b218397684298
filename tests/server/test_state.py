"""The server never analyses in the module-default cache: the workspace index owns one
front-end cache, and each open document its own (tests/server/test_memory.py shows that
closing a document frees it)."""

from __future__ import annotations

from pathlib import Path

from quivers_lsp.state import State

from quivers.semantic.checker import cache_stats as check_stats
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache
from quivers.syntax.parser import cache_stats as parse_stats


def test_the_workspace_index_parses_in_the_states_own_cache(tmp_path: Path) -> None:
    state = State()
    cache = state.index.cache
    assert isinstance(cache, FrontendCache) and cache is not DEFAULT_CACHE
    assert State().index.cache is not cache
    default_parsed = parse_stats()["parsed"]
    for name in ("a.qvr", "b.qvr"):
        (tmp_path / name).write_text(f"object {name[0].upper()} : Real 1\nexport A\n", "utf-8")
    state.index.set_roots([tmp_path.as_uri()])  # walks the roots in a thread
    assert state.index.first_walk.wait(timeout=60)
    assert len(state.index.files) == 2
    # Both files were parsed and checked in the state's cache, none in the default one.
    assert parse_stats(cache)["parsed"] == 3  # "export A" is shared
    assert check_stats(cache)["checked"] >= 2
    assert parse_stats()["parsed"] == default_parsed
