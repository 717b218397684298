"""The QVR language server: wiring of state and feature handlers, and the stdio loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import threading

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from quivers import __version__
from quivers_lsp.features import documents, editing, flowchart, navigation, runs
from quivers_lsp.protocol import QvrProtocol
from quivers_lsp.state import State, use_qvr_documents
from quivers_lsp.transport import StdoutWriter, read_stdin
from quivers_lsp.worker import RunWorker

logger = logging.getLogger(__name__)
# The analysis threads hold the GIL while they work; the event loop gets it back at
# each switch interval. A shorter interval than Python's 5 ms keeps requests on other
# documents fast while a large one is analysed (benchmarks/bench_server.py --stall;
# QVR_LSP_SWITCH_INTERVAL overrides it, for that benchmark's comparison).
SWITCH_INTERVAL = 0.001


def build_server() -> LanguageServer:
    server = LanguageServer("qvr-language-server", __version__, protocol_cls=QvrProtocol)
    state = State()
    server.qvr_state = state  # type: ignore[attr-defined]

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: LanguageServer, params: lsp.InitializedParams) -> None:
        use_qvr_documents(ls.workspace)
        roots = [f.uri for f in ls.workspace.folders.values()]
        if not roots and ls.workspace.root_uri:
            roots = [ls.workspace.root_uri]
        state.index.set_roots(roots)
        # Warm the run worker now, so the first run reports progress quickly (unless
        # the client asks not to: initializationOptions {"warmWorker": false}).
        protocol = ls.protocol
        assert isinstance(protocol, QvrProtocol)
        if state.worker is None and protocol.initialization_options.get("warmWorker", True):
            state.worker = RunWorker()
            state.worker.start(asyncio.get_running_loop())

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: LanguageServer, params: object) -> None:
        if state.worker is None:
            state.worker = RunWorker()
        state.worker.close()  # and no worker is started after this
        for uri in list(state.analysers):
            state.forget(uri)

    for module in (documents, navigation, editing, flowchart, runs):
        module.register(server, state)
    return server


def serve(server: LanguageServer) -> int:
    """Serve over stdio until ``exit`` or the end of stdin; the process's exit code."""
    protocol = server.protocol
    assert isinstance(protocol, QvrProtocol)
    stop = threading.Event()
    server._stop_event = stop
    protocol.set_writer(StdoutWriter())

    async def main() -> None:
        reading = asyncio.ensure_future(read_stdin(protocol.receive, stop))

        def exit_now() -> None:
            stop.set()
            reading.cancel()

        protocol.on_exit = exit_now
        with contextlib.suppress(asyncio.CancelledError):
            await reading

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        state: State = server.qvr_state  # type: ignore[attr-defined]
        if state.worker is not None:
            state.worker.close()
    if protocol.exit_code is not None:
        return protocol.exit_code
    return 0 if protocol._shutdown else 1


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
    sys.setswitchinterval(float(os.environ.get("QVR_LSP_SWITCH_INTERVAL", SWITCH_INTERVAL)))
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    code = serve(server)
    # Exit at once: tearing down a large document's trees and the front end's caches
    # at interpreter exit took seconds; the worker is already gone (serve closed it).
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
