"""The QVR language server: wiring of state and feature handlers."""

from __future__ import annotations

import asyncio
import gc

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from quivers import __version__
from quivers_lsp.features import documents, editing, flowchart, navigation, runs
from quivers_lsp.state import State, use_qvr_documents
from quivers_lsp.worker import RunWorker


def build_server() -> LanguageServer:
    server = LanguageServer("qvr-language-server", __version__)
    state = State()
    server.qvr_state = state  # type: ignore[attr-defined]

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: LanguageServer, params: lsp.InitializedParams) -> None:
        use_qvr_documents(ls.workspace)
        roots = [f.uri for f in ls.workspace.folders.values()]
        if not roots and ls.workspace.root_uri:
            roots = [ls.workspace.root_uri]
        state.set_roots(roots)
        # Warm the run worker now, so the first run reports progress quickly.
        state.worker = RunWorker()
        state.worker.start(asyncio.get_running_loop())

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: LanguageServer, params: object) -> None:
        if state.worker is not None:
            state.worker.shutdown()

    for module in (documents, navigation, editing, flowchart, runs):
        module.register(server, state)
    return server


def main() -> None:
    server = build_server()
    # Each analysis allocates many small, mostly acyclic objects, so the default
    # thresholds trigger frequent full collections that walk every open document's
    # trees: 100-300 ms pauses on a 5,000-line file (measured by benchmarks/
    # bench_server.py). Collect rarely, and keep what is loaded at start (the grammar
    # tables, lsprotocol's converters) out of every collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    server.start_io()
