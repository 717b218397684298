"""Analysis off the event loop: one thread per open document, newest version only.

Analysing a 20,000-line file takes hundreds of milliseconds (seconds when it is
opened); on the event loop that froze every request on every document. Here each
open document has its own thread, which analyses only the newest text it was given:
versions that arrive while it works replace each other, and a running analysis whose
text is already stale is interrupted (``AnalysisCancelled`` is raised inside it). The
event loop keeps the last finished ``Document`` of each file; a request on a document
waits for the analysis of the document's current text (so no answer is computed on
an old text and mapped to wrong positions), a request on another document does not
wait at all.

The front end is pure Python, so an analysis thread holds the GIL while it works;
the loop thread gets it back every switch interval. ``benchmarks/bench_server.py``
(``--stall``) measures hover on a small document while a 20,000-line one is typed into.

Interrupting: ``PyThreadState_SetAsyncExc`` raises the exception in the analysis
thread at its next bytecode. The front end holds no lock and no half-written cache
entry across bytecodes that this could break (a cache entry is stored in one step,
after it is computed), and nothing in it catches ``BaseException``. It is only raised
while the thread is inside ``Document(...)`` (a flag guarded by a lock), and the
thread clears a pending one when it leaves, so it never lands elsewhere. An async
exception can still be lost: when it fires inside a garbage-collector callback or a
finaliser (``__del__``, a weakref callback) that runs in the thread, Python reports it
as unraisable and carries on. So the interrupt also marks the analysis stale, and a
stale analysis that ran to its end is dropped like an interrupted one (later, but
never published).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pygls.exceptions import JsonRpcContentModified

from quivers.analysis import Document
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache

logger = logging.getLogger(__name__)


class AnalysisCancelled(BaseException):  # noqa: N818 - not an error: a stop signal
    """Raised inside an analysis thread whose text became stale."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class DocumentAnalyser:
    """The analyses of one open document (created on didOpen, closed on didClose)."""

    def __init__(
        self,
        uri: str,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[Document, Any], None],
        prepare: Callable[[Document], Any] | None = None,
        warm: Callable[[Document], None] | None = None,
        cache: FrontendCache = DEFAULT_CACHE,
    ) -> None:
        self.uri = uri
        self.cache = cache
        self.latest: Document | None = None
        self.extra: Any = None  # what ``prepare`` made of ``latest`` in the thread
        self._loop = loop
        self._on_done = on_done
        self._prepare = prepare
        self._warm = warm
        self._wanted: tuple[str, int | None] | None = None
        self._waiters: list[tuple[str, asyncio.Future[Document]]] = []
        self._cond = threading.Condition()
        self._region = threading.Lock()  # guards _running and the async exception
        self._running: str | None = None
        self._stale = False  # the running text was interrupted (guarded by _region)
        self._closed = False
        self.cancelled = 0  # interrupted analyses (tests and benchmarks read it)
        self._thread = threading.Thread(target=self._work, name=f"analysis {uri}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the loop side

    def want(self, text: str, version: int | None) -> None:
        """Analyse ``text`` next (dropping any older text not yet started)."""
        # requests waiting on an older text: LSP's answer is ContentModified
        keep = []
        for waiting, future in self._waiters:
            if waiting == text:
                keep.append((waiting, future))
            elif not future.done():
                future.set_exception(
                    JsonRpcContentModified("the document changed while this request waited")
                )
        self._waiters = keep
        latest = self.latest
        if latest is not None and latest.text == text:  # an undo, or a save
            latest.version = version
            with self._cond:
                self._wanted = None
            self._interrupt_unless(text)
            return
        with self._cond:
            self._wanted = (text, version)
            self._cond.notify()
        self._interrupt_unless(text)

    async def document(self, text: str, version: int | None) -> Document:
        """The analysis of ``text`` (waiting for it when it is not done yet)."""
        latest = self.latest
        if latest is not None and latest.text == text:
            latest.version = version
            return latest
        future: asyncio.Future[Document] = self._loop.create_future()
        self._waiters.append((text, future))
        with self._cond:
            if self._running != text and (self._wanted is None or self._wanted[0] != text):
                self._wanted = (text, version)
                self._cond.notify()
        self._interrupt_unless(text)  # the document's text is this one now
        return await future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted = None
            self._cond.notify()
        self._interrupt_unless(None)
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        self.latest = None

    def _interrupt_unless(self, text: str | None) -> None:
        with self._region:
            running = self._running
            if running is not None and running != text and self._thread.ident is not None:
                self._stale = True
                _raise_in(self._thread.ident, AnalysisCancelled)

    def _finished(self, doc: Document, extra: Any) -> None:
        if self._closed:
            return
        self.latest = doc
        self.extra = extra
        keep = []
        for text, future in self._waiters:
            if future.done():
                continue
            if text == doc.text:
                future.set_result(doc)
            else:
                keep.append((text, future))
        self._waiters = keep

    def _published(self, doc: Document, extra: Any) -> None:
        if not self._closed:
            self._on_done(doc, extra)

    def _failed(self, text: str, exc: Exception) -> None:
        for waiting, future in self._waiters:
            if waiting == text and not future.done():
                future.set_exception(exc)

    # ---------------------------------------------------------- the thread side

    def _work(self) -> None:
        while True:
            try:
                with self._cond:
                    while self._wanted is None and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    text, version = self._wanted  # type: ignore[misc]
                    self._wanted = None
                done = self._analyse(text, version)
                if done is not None:
                    self._loop.call_soon_threadsafe(self._finished, *done)
            except AnalysisCancelled:  # raised just as an analysis ended: nothing lost
                self._settle()

    def _settle(self) -> None:
        with self._region:
            self._running = None
            assert self._thread.ident is not None
            _raise_in(self._thread.ident, None)  # drop one raised too late

    def _analyse(self, text: str, version: int | None) -> tuple[Document, Any] | None:
        try:
            try:
                with self._region:
                    self._running = text
                    self._stale = False
                began = time.perf_counter()
                doc = Document(text, self.uri, version, self.cache)
                extra = self._prepare(doc) if self._prepare is not None else None
                with self._region:
                    if self._stale:  # interrupted, but the exception was swallowed
                        raise AnalysisCancelled
                # diagnostics first; then what queries need, so that a request never
                # computes it on the loop
                self._loop.call_soon_threadsafe(self._published, doc, extra)
                if self._warm is not None:
                    self._warm(doc)
                took = 1000 * (time.perf_counter() - began)
                logger.debug("%s v%s analysed in %.0f ms", self.uri, version, took)
                return doc, extra
            finally:
                self._settle()
        except AnalysisCancelled:
            self._settle()
            self.cancelled += 1
            return None
        except Exception as exc:
            logger.exception("analysis of %s failed", self.uri)
            self._loop.call_soon_threadsafe(self._failed, text, exc)
            return None
