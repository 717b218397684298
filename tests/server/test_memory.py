"""Closing a document frees what the server held for it (issue 14, item 10): the
analysis, the semantic tokens and the front end's memo tables of that document. A
20,000-line file's memory stayed until the shared caches happened to be emptied, so
opening and closing a few large files made the server grow by each of them."""

from __future__ import annotations

from .lsp_helpers import REFERENCE, RawClient, rss_kib
from .test_stalls import LINES, generated, hover

CYCLES = 4


async def test_closing_large_documents_does_not_accumulate_memory() -> None:
    raw = await RawClient.start()
    try:
        await raw.initialize(warm_worker=False)
        small = "file:///tmp/qvr-memory/small.qvr"
        raw.open(small, REFERENCE)
        await raw.diagnostics(small, 1)
        await raw.request("textDocument/hover", hover(small))
        base = rss_kib(raw.pid)
        grown = []
        for i in range(CYCLES):
            uri = f"file:///tmp/qvr-memory/big{i}.qvr"
            raw.open(uri, generated(LINES, f"m{i}"))  # other names each time
            await raw.diagnostics(uri, 1)
            raw.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            # answered after the close: the close has been handled
            await raw.request("textDocument/hover", hover(small))
            grown.append(rss_kib(raw.pid) - base)
        # Each file reuses what the previous one freed: after the second cycle (the
        # allocator's high-water mark) RSS stays flat, where a leak adds about one
        # file's worth (grown[0]) per cycle.
        assert grown[-1] - grown[1] < 0.5 * grown[0], f"RSS growth per cycle (kB): {grown}"
    finally:
        await raw.kill()
