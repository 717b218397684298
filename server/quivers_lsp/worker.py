"""The run worker: a spawned process that samples and fits, so torch never enters
the server process (a torch loop in a thread stalls the server through the GIL).

The server sends ``(job_id, kind, text, path, options)`` on the job pipe; the worker
answers on the event pipe with ``("progress", job_id, fraction, message)``,
``("stopping", job_id)`` when it has heard a stop request, and finally
``("result", job_id, dict)``.

Lifecycle, and why:

- The worker dies with the server. A thread in the worker reads the job pipe and
  exits the process when the pipe ends (the server's end closes when the server dies,
  however it dies); on Linux ``PR_SET_PDEATHSIG`` also has the kernel send SIGKILL
  when the server exits (it is tied to the thread that spawned the worker: the event
  loop's, which lives as long as the server). A worker that finds its parent already
  gone at start exits at once.
- Cancelling ends a run within ``STOP_GRACE_SECONDS`` plus a kill, whatever the
  worker does: SIGUSR1 sets the flag the runs poll between iterations (so an SVI run
  returns what it computed so far); a worker that has not answered by then (stuck in
  one long iteration, or stopped with SIGSTOP) is killed with SIGKILL and a fresh one
  is started in the background. A worker that has handled the signal within the
  grace says so (``stopping``, sent by a thread once the handler has run, which
  proves the main thread is running Python code and will reach the run's next poll)
  and then has ``FINISH_GRACE_SECONDS`` to answer: a NUTS draw on a loaded machine
  can take longer than the grace, and a corpus fit writes its checkpoint then, which
  a kill in the middle would lose. Nothing here blocks the event loop: a dead worker is
  reaped in a thread.
- A worker that dies during a run fails that run ("the worker died") and is replaced.
- After ``close`` (the server's shutdown) no worker is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quivers.jobs.protocol import RunKind, RunResult

logger = logging.getLogger(__name__)

_CTX = mp.get_context("spawn")
STOP_GRACE_SECONDS = 0.5
FINISH_GRACE_SECONDS = 20.0  # a worker that has acknowledged the stop: to its next poll
PR_SET_PDEATHSIG = 1


# ------------------------------------------------------------ the worker process


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)


def _worker_main(jobs_in: Any, events_out: Any, parent: int) -> None:
    _die_with_parent(parent)
    stop = threading.Event()
    heard = threading.Event()  # the signal was handled: the main thread runs Python code
    current: list[int | None] = [None]  # the running job's id
    send_lock = threading.Lock()

    def send(event: tuple[Any, ...]) -> None:
        with send_lock:  # the acknowledging thread and the main thread share the pipe
            events_out.send(event)

    def on_stop(*_: Any) -> None:  # only sets flags: it may interrupt a send
        stop.set()
        heard.set()

    signal.signal(signal.SIGUSR1, on_stop)
    pending: queue.Queue[Any] = queue.Queue()

    def read_jobs() -> None:
        """The lifeline: the job pipe ends when the server is gone, then so do we."""
        while True:
            try:
                job = jobs_in.recv()
            except (EOFError, OSError):
                os._exit(0)
            if job is None:
                pending.put(None)
                return
            pending.put(job)

    def acknowledge() -> None:
        """Tell the server a stop was heard: the run is alive and will answer at its
        next iteration (a SIGSTOPped worker, or one inside one long native call, does
        not get here, and is killed after the grace period)."""
        while True:
            heard.wait()
            heard.clear()
            job = current[0]
            if job is not None:
                send(("stopping", job))

    threading.Thread(target=read_jobs, name="jobs", daemon=True).start()
    threading.Thread(target=acknowledge, name="acknowledge stops", daemon=True).start()

    # Imported here: the worker pays for torch once, at start, so runs start fast.
    import torch

    from quivers.jobs.run import execute

    torch.set_num_threads(1)
    send(("ready",))
    while True:
        job = pending.get()
        if job is None:
            return
        job_id, kind, text, path, options = job
        stop.clear()
        current[0] = job_id

        def progress(fraction: float, message: str, job_id: int = job_id) -> None:
            send(("progress", job_id, fraction, message))

        result = execute(kind, text, path, options, progress, stop.is_set)
        current[0] = None
        send(("result", job_id, result.to_wire()))


# ----------------------------------------------------------- the server's handle


@dataclass
class _Job:
    future: asyncio.Future[dict[str, Any]]
    on_progress: Callable[[float, str], None]
    stopping: bool = False  # the worker has heard the stop request and is finishing


def stopped(kind: RunKind | None, why: str, cancelled: bool) -> dict[str, Any]:
    """The wire form of a run that the server ended (or could not start)."""
    return RunResult.failure(kind, why, cancelled=cancelled).to_wire()


@dataclass
class RunWorker:
    """The server-side handle of the worker process."""

    process: Any = None
    ready: threading.Event = field(default_factory=threading.Event)
    closed: bool = False
    _jobs: Any = None
    _pending: dict[int, _Job] = field(default_factory=dict)
    _kinds: dict[int, RunKind] = field(default_factory=dict)
    _next_id: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _generation: int = 0  # bumped at each start: events of an older process are stale
    _stopping: bool = False  # a cancel was asked for the running job
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Spawn the worker (it warms up in the background). Call on the loop thread."""
        if self.closed:
            return
        self._loop = loop
        jobs_in, jobs_out = _CTX.Pipe(duplex=False)
        events_in, events_out = _CTX.Pipe(duplex=False)
        self.ready.clear()
        self._generation += 1
        self.process = _CTX.Process(
            target=_worker_main, args=(jobs_in, events_out, os.getpid()), daemon=True
        )
        self.process.start()
        jobs_in.close()  # the child's ends: only it holds them now
        events_out.close()
        self._jobs = jobs_out
        threading.Thread(
            target=self._read,
            args=(events_in, self.process, self._generation),
            name="run worker events",
            daemon=True,
        ).start()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    async def run(
        self,
        kind: RunKind,
        text: str,
        path: str,
        options: dict[str, Any],
        on_progress: Callable[[float, str], None],
    ) -> dict[str, Any]:
        assert self._loop is not None
        if self.closed:
            return stopped(kind, "the server is shutting down", cancelled=True)
        if not self.alive():
            self.start(self._loop)
        self._next_id += 1
        self._stopping = False
        job_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[job_id] = _Job(future, on_progress)
        self._kinds[job_id] = kind

        def forget(_: object, job_id: int = job_id) -> None:
            self._pending.pop(job_id, None)
            self._kinds.pop(job_id, None)

        future.add_done_callback(forget)
        try:
            self._jobs.send((job_id, kind, text, path, options))
        except (OSError, ValueError):
            future.set_result(stopped(kind, "the worker could not be reached", False))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # the request was cancelled ($/cancelRequest): the job must stop all the same
            task = self._loop.create_task(self.stop_current())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            raise

    async def stop_current(self) -> None:
        """End the running job within the grace period, killing the worker if need be."""
        if not self._pending or self.process is None:
            return
        self._stopping = True
        with contextlib.suppress(ProcessLookupError, OSError):
            os.kill(self.process.pid, signal.SIGUSR1)
        jobs = list(self._pending.values())
        _, late = await asyncio.wait([job.future for job in jobs], timeout=STOP_GRACE_SECONDS)
        if late and all(job.stopping for job in jobs if job.future in late):
            _, late = await asyncio.wait(late, timeout=FINISH_GRACE_SECONDS)
        if late:  # stuck inside one long iteration, or stopped: kill it
            self._kill("the run was stopped", cancelled=True, restart=True)

    def _kill(self, why: str, cancelled: bool, restart: bool) -> None:
        process, self.process = self.process, None
        self._generation += 1  # events still in flight from it are ignored
        if process is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                os.kill(process.pid, signal.SIGKILL)
            threading.Thread(target=process.join, name="reap worker", daemon=True).start()
        with contextlib.suppress(OSError):
            if self._jobs is not None:
                self._jobs.close()
        for job_id, job in list(self._pending.items()):
            if not job.future.done():
                job.future.set_result(stopped(self._kinds.get(job_id), why, cancelled))
        if restart and not self.closed and self._loop is not None:
            self.start(self._loop)

    def close(self) -> None:
        """The server shuts down: end the worker now and never start another."""
        self.closed = True
        if self.process is not None:
            with contextlib.suppress(OSError, ValueError):
                self._jobs.send(None)
        self._kill("the server is shutting down", cancelled=True, restart=False)

    def _read(self, events: Any, process: Any, generation: int) -> None:
        """Reader thread: hand one process's events to the event loop."""
        try:
            while True:
                ready = mpc.wait([events, process.sentinel])
                if events in ready:
                    try:
                        event = events.recv()
                    except (EOFError, OSError):
                        break
                    self._post(self._dispatch, generation, event)
                    continue
                break  # the process ended
        finally:
            with contextlib.suppress(OSError):
                events.close()
            self._post(self._ended, generation)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(fn, *args)

    def _ended(self, generation: int) -> None:
        if generation != self._generation:
            return  # a process we killed ourselves
        if self._stopping:
            self._kill("the run was stopped", cancelled=True, restart=True)
            return
        logger.warning("the run worker ended unexpectedly")
        self._kill("the worker died", cancelled=False, restart=bool(self._pending))

    def _dispatch(self, generation: int, event: tuple[Any, ...]) -> None:
        if generation != self._generation:
            return
        kind = event[0]
        if kind == "ready":
            self.ready.set()
            return
        job = self._pending.get(event[1])
        if job is None:
            return
        if kind == "progress":
            job.on_progress(event[2], event[3])
        elif kind == "stopping":
            job.stopping = True
        elif kind == "result" and not job.future.done():
            job.future.set_result(event[2])
