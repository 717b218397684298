"""The server's state owns one front-end cache, used for every document it analyses."""

from __future__ import annotations

from pathlib import Path

from quivers_lsp.state import State

from quivers.semantic.checker import cache_stats as check_stats
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache
from quivers.syntax.parser import cache_stats as parse_stats


def test_state_documents_share_the_states_own_cache(tmp_path: Path) -> None:
    state = State()
    assert isinstance(state.cache, FrontendCache) and state.cache is not DEFAULT_CACHE
    assert state.index.cache is state.cache
    assert State().cache is not state.cache
    default_parsed = parse_stats()["parsed"]
    for name in ("a.qvr", "b.qvr"):
        (tmp_path / name).write_text(f"object {name[0].upper()} : Real 1\nexport A\n", "utf-8")
    state.index.set_roots([tmp_path.as_uri()])  # walks the roots in a thread
    assert state.index.first_walk.wait(timeout=60)
    assert len(state.index.files) == 2
    # Both files were parsed and checked in the state's cache, none in the default one.
    assert parse_stats(state.cache)["parsed"] == 3  # "export A" is shared
    assert check_stats(state.cache)["checked"] >= 2
    assert parse_stats()["parsed"] == default_parsed
