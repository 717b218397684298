"""The run commands: sample, fit with SVI, run NUTS, cancel.

Runs happen in the worker process on the buffer's current text; this handler only
forwards progress (as cancellable work-done progress the server creates) and returns
the worker's result. One run at a time: the guard is taken before the handler's first
``await``, so back-to-back runs cannot all slip past it while progress is created.
A run ends within about a second of a cancel (``qvr.cancelRun``, the progress's cancel
button, or ``$/cancelRequest`` on the command), whatever the worker is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from quivers.jobs.protocol import RunKind
from quivers_lsp.state import State
from quivers_lsp.worker import RunWorker, stopped

TITLES = {"sample": "QVR: sampling", "svi": "QVR: fitting with SVI", "nuts": "QVR: running NUTS"}
COMMANDS: dict[str, RunKind] = {"qvr.sample": "sample", "qvr.fitSvi": "svi", "qvr.runNuts": "nuts"}
CANCEL = "qvr.cancelRun"
WATCH_SECONDS = 0.05  # how often the progress token's cancel flag is looked at


def _options(args: tuple[Any, ...]) -> tuple[str | None, dict[str, Any]]:
    uri = args[0] if args and isinstance(args[0], str) else None
    raw = args[1] if len(args) > 1 else None
    if isinstance(raw, str):  # a code lens passes the target name
        return uri, {"target": raw}
    if isinstance(raw, dict):
        return uri, dict(raw)
    if raw is not None and hasattr(raw, "__dict__"):
        return uri, {k: v for k, v in vars(raw).items() if not k.startswith("_")}
    return uri, {}


def register(server: LanguageServer, state: State) -> None:
    def worker() -> RunWorker:
        if state.worker is None:
            state.worker = RunWorker()
            state.worker.start(asyncio.get_running_loop())
        return state.worker

    async def run(ls: LanguageServer, kind: RunKind, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, options = _options(args)
        if uri is None:
            return stopped(kind, "no document given", cancelled=False)
        if state.run_active or worker().busy:
            return stopped(kind, "a run is already in progress; cancel it first", cancelled=False)
        state.run_active = True  # before the first await
        try:
            return await run_once(ls, kind, uri, options)
        finally:
            state.run_active = False

    async def run_once(
        ls: LanguageServer, kind: RunKind, uri: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        doc = await state.document(ls, uri)
        path = to_fs_path(uri) or uri
        token = f"qvr-run-{uuid.uuid4()}"
        window = ls.client_capabilities.window
        progress = bool(window and window.work_done_progress)
        if progress:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(
                token, lsp.WorkDoneProgressBegin(title=TITLES[kind], cancellable=True, percentage=0)
            )

        def on_progress(fraction: float, message: str) -> None:
            if progress:
                ls.work_done_progress.report(
                    token,
                    lsp.WorkDoneProgressReport(message=message, percentage=int(100 * fraction)),
                )

        runner = worker()
        watcher = (
            asyncio.get_running_loop().create_task(_watch_cancel(ls, token, runner))
            if progress
            else None
        )
        result: dict[str, Any] | None = None
        try:
            result = await runner.run(kind, doc.text, path, options, on_progress)
        finally:
            if watcher is not None:
                watcher.cancel()
            if progress:
                done = (
                    "cancelled"
                    if result is None or result.get("cancelled")
                    else ("done" if result.get("ok") else "failed")
                )
                ls.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=done))
                ls.work_done_progress.tokens.pop(token, None)
        assert result is not None
        return result

    for command, kind in COMMANDS.items():
        _register_command(server, command, kind, run)

    @server.command(CANCEL)
    async def cancel(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        if state.worker is None or not state.worker.busy:
            return {"cancelled": False}
        await state.worker.stop_current()
        return {"cancelled": True}


def _register_command(server: LanguageServer, command: str, kind: RunKind, run: Any) -> None:
    async def handler(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        return await run(ls, kind, args)

    handler.__name__ = f"command_{kind}"
    server.command(command)(handler)


async def _watch_cancel(ls: LanguageServer, token: str, worker: RunWorker) -> None:
    """The client's cancel button marks the token's future; stop the run then."""
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            future = ls.work_done_progress.tokens.get(token)
            if future is not None and future.cancelled():
                await worker.stop_current()
                return
