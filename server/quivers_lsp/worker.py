"""The run worker: a spawned process that samples and fits, so torch never enters
the server process (a torch loop in a thread stalls the server through the GIL).

The server sends jobs on ``jobs``; the worker answers on ``events`` with
``("progress", job_id, fraction, message)`` and finally ``("result", job_id, dict)``.
Cancellation is cooperative through a shared event, polled between iterations; a
worker that does not stop in time is terminated and a fresh one started.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quivers.jobs.protocol import RunResult

_CTX = mp.get_context("spawn")
STOP_GRACE_SECONDS = 5.0


def _worker_main(jobs: Any, events: Any, cancel: Any) -> None:
    # Imported here: the worker pays for torch once, at start, so runs start fast.
    import torch

    from quivers.jobs.run import execute

    torch.set_num_threads(1)
    events.put(("ready", None))
    while True:
        job = jobs.get()
        if job is None:
            return
        job_id, kind, text, path, options = job
        cancel.clear()

        def progress(fraction: float, message: str, job_id: int = job_id) -> None:
            events.put(("progress", job_id, fraction, message))

        result = execute(kind, text, path, options, progress, cancel.is_set)
        events.put(("result", job_id, result.to_wire()))


@dataclass
class _Job:
    future: asyncio.Future[dict[str, Any]]
    on_progress: Callable[[float, str], None]


@dataclass
class RunWorker:
    """The server-side handle of the worker process."""

    process: Any = None
    jobs: Any = None
    events: Any = None
    cancel: Any = None
    ready: threading.Event = field(default_factory=threading.Event)
    _pending: dict[int, _Job] = field(default_factory=dict)
    _next_id: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _reader: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Spawn the worker (it warms up in the background)."""
        self._loop = loop
        self.jobs, self.events, self.cancel = _CTX.Queue(), _CTX.Queue(), _CTX.Event()
        self.ready.clear()
        self.process = _CTX.Process(
            target=_worker_main, args=(self.jobs, self.events, self.cancel), daemon=True
        )
        self.process.start()
        self._reader = threading.Thread(target=self._read, args=(self.events,), daemon=True)
        self._reader.start()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    async def run(
        self,
        kind: str,
        text: str,
        path: str,
        options: dict[str, Any],
        on_progress: Callable[[float, str], None],
    ) -> dict[str, Any]:
        assert self._loop is not None
        if not self.alive():
            self.start(self._loop)
        self._next_id += 1
        job_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[job_id] = _Job(future, on_progress)
        self.jobs.put((job_id, kind, text, path, options))
        try:
            return await future
        finally:
            self._pending.pop(job_id, None)

    async def stop_current(self) -> None:
        """Ask the running job to stop; restart the worker if it does not."""
        if not self._pending or self.cancel is None:
            return
        self.cancel.set()
        waiting = [job.future for job in self._pending.values()]
        done, _ = await asyncio.wait(waiting, timeout=STOP_GRACE_SECONDS)
        if len(done) < len(waiting):  # stuck inside one long iteration: kill it
            self._restart(cancelled=True)

    def _restart(self, cancelled: bool) -> None:
        pending = list(self._pending.items())
        self.shutdown()
        for _, job in pending:
            if not job.future.done():
                why = "the run was stopped" if cancelled else "the worker died"
                job.future.set_result(RunResult.failure(None, why, cancelled=cancelled).to_wire())
        assert self._loop is not None
        self.start(self._loop)

    def shutdown(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            self.jobs.put(None)
        self.process.join(timeout=1.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2.0)
        self.process = None

    def _read(self, events: Any) -> None:
        """Reader thread: hand worker events to the event loop."""
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if self.process is None or not self.process.is_alive():
                    if self._pending and self._loop is not None and events is self.events:
                        self._loop.call_soon_threadsafe(self._restart, False)
                    return
                continue
            except (EOFError, OSError):
                return
            if self._loop is None:
                return
            self._loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "ready":
            self.ready.set()
            return
        job = self._pending.get(event[1])
        if job is None:
            return
        if kind == "progress":
            job.on_progress(event[2], event[3])
        elif kind == "result" and not job.future.done():
            job.future.set_result(event[2])
