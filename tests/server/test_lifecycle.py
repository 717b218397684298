"""Runs and the worker process through a raw client (issue 14, items 7 and 8): one run
at a time, cancels that end the run whatever the worker does (a SIGSTOPped worker is
killed), shutdown during a run, and no worker outliving its server however the server
ends."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .lsp_helpers import EXAMPLES, REFERENCE, RawClient, alive, child_pids, new_uri

REGRESSION = (EXAMPLES / "bayesian_linear_regression.qvr").read_text()
LONG_FIT = {"steps": 1_000_000, "seed": 4}
HANG = 20.0  # seconds: only a hang detector; the protocol bound is about one second


@pytest.fixture
async def raw() -> AsyncIterator[RawClient]:
    client = await RawClient.start()
    await client.initialize()
    yield client
    await client.kill()


async def opened(raw: RawClient, text: str = REGRESSION) -> str:
    uri = new_uri("run")
    raw.open(uri, text)
    await raw.diagnostics(uri, 1)
    return uri


def run(raw: RawClient, command: str, *arguments: object) -> int:
    return raw.send_request(
        "workspace/executeCommand", {"command": command, "arguments": list(arguments)}
    )


async def first_step(raw: RawClient, start: int = 0) -> str:
    """The token of the first SVI progress report after message ``start``."""
    report = await raw.wait(
        lambda m: (
            m.get("method") == "$/progress"
            and m["params"]["value"].get("kind") == "report"
            and str(m["params"]["value"].get("message", "")).startswith("step ")
        ),
        timeout=120,
        start=start,
    )
    return str(report["params"]["token"])


def worker_pids(server: int) -> set[int]:
    """The server's live spawned children, multiprocessing's resource tracker excepted
    (a killed worker is a zombie until the server reaps it: not counted)."""
    out = set()
    for pid in child_pids(server):
        if not alive(pid):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            out.add(pid)
    return out


async def gone(pids: set[int]) -> bool:
    for _ in range(int(HANG / 0.05)):
        if not any(alive(p) for p in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_one_run_at_a_time_with_progress(raw: RawClient) -> None:
    uri = await opened(raw)
    ids = [run(raw, "qvr.fitSvi", uri, LONG_FIT) for _ in range(3)]
    refused = [await raw.response(i) for i in ids[1:]]
    for answer in refused:
        assert answer["result"]["ok"] is False
        assert "already in progress" in answer["result"]["error"]
    await first_step(raw)
    cancel = await raw.request(
        "workspace/executeCommand", {"command": "qvr.cancelRun", "arguments": []}
    )
    assert cancel["result"] == {"cancelled": True}
    first = await raw.response(ids[0], timeout=HANG)
    assert first["result"]["cancelled"] is True


async def test_cancel_request_stops_the_worker(raw: RawClient) -> None:
    uri = await opened(raw)
    msg_id = run(raw, "qvr.fitSvi", uri, LONG_FIT)
    await first_step(raw)
    raw.notify("$/cancelRequest", {"id": msg_id})
    answer = await raw.response(msg_id, timeout=HANG)
    assert answer["error"]["code"] == -32800
    # the worker stopped: a new run is accepted and finishes (a worker still in the
    # million-step fit would keep it queued)
    small = await opened(raw, REFERENCE)
    for _ in range(50):
        again = await raw.request(
            "workspace/executeCommand",
            {"command": "qvr.sample", "arguments": [small, {"n": 2, "length": 3}]},
        )
        if "already in progress" not in str(again["result"].get("error")):
            break
        await asyncio.sleep(0.1)  # the stopping run is still being reaped
    assert again["result"]["ok"], again


async def test_cancel_kills_a_stopped_worker(raw: RawClient) -> None:
    uri = await opened(raw)
    msg_id = run(raw, "qvr.fitSvi", uri, LONG_FIT)
    await first_step(raw)
    (worker,) = worker_pids(raw.pid)
    os.kill(worker, signal.SIGSTOP)
    began = time.monotonic()
    cancel = await raw.request(
        "workspace/executeCommand", {"command": "qvr.cancelRun", "arguments": []}
    )
    assert cancel["result"] == {"cancelled": True}
    answer = await raw.response(msg_id, timeout=HANG)
    assert answer["result"]["cancelled"] is True
    assert time.monotonic() - began < HANG
    assert await gone({worker}), "the stopped worker was not killed"
    # the server goes on serving, and runs again with a fresh worker
    small = await opened(raw, REFERENCE)
    again = await raw.request(
        "workspace/executeCommand",
        {"command": "qvr.sample", "arguments": [small, {"n": 2, "length": 3}]},
    )
    assert again["result"]["ok"], again


async def test_shutdown_during_a_run(raw: RawClient) -> None:
    uri = await opened(raw)
    msg_id = run(raw, "qvr.fitSvi", uri, LONG_FIT)
    await first_step(raw)
    workers = worker_pids(raw.pid)
    shutdown = await raw.request("shutdown")
    assert shutdown == {"jsonrpc": "2.0", "id": shutdown["id"], "result": None}
    (answer,) = [await raw.response(msg_id, timeout=HANG)]
    assert len(raw.responses(msg_id)) == 1
    assert "error" in answer or answer["result"]["cancelled"] is True
    assert await gone(workers)
    assert worker_pids(raw.pid) == set(), "a new worker was started after shutdown"
    raw.notify("exit")
    assert await raw.process.wait() == 0


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
async def test_the_worker_dies_with_its_server(raw: RawClient, how: signal.Signals) -> None:
    uri = await opened(raw, REFERENCE)
    warm = await raw.request(
        "workspace/executeCommand",
        {"command": "qvr.sample", "arguments": [uri, {"n": 1, "length": 2}]},
    )
    assert warm["result"]["ok"]
    children = child_pids(raw.pid)
    assert worker_pids(raw.pid)
    os.kill(raw.pid, how)
    await raw.process.wait()
    assert await gone(children), f"left behind: {[p for p in children if alive(p)]}"


async def test_the_worker_dies_with_its_server_during_a_run(raw: RawClient) -> None:
    uri = await opened(raw)
    run(raw, "qvr.fitSvi", uri, LONG_FIT)
    await first_step(raw)
    children = child_pids(raw.pid)
    os.kill(raw.pid, signal.SIGKILL)
    await raw.process.wait()
    assert await gone(children), f"left behind: {[p for p in children if alive(p)]}"


NON_FINITE = """object X : Real 1
morphism big : X -> X [role=kernel, scale=1e38] ~ Normal
program p : X -> X
    sample y <- big
    return y
export p
"""


async def test_non_finite_numbers_go_out_as_json(raw: RawClient) -> None:
    # issue 14, item 6: draws near 1e38 overflow float32 in their mean and sd; a bare
    # NaN would make the strict JSON reader of this client (as VS Code's) fail
    uri = await opened(raw, NON_FINITE)
    answer = await raw.request(
        "workspace/executeCommand",
        {"command": "qvr.sample", "arguments": [uri, {"n": 50, "length": 1}]},
    )
    result = answer["result"]
    assert result["ok"], result
    summary = result["samples"]["y"]
    assert summary["mean"] in ("NaN", "Infinity", "-Infinity"), summary
    assert isinstance(summary["max"], float) and summary["max"] > 1e37
