"""pytest-lsp fixtures: the real server process over stdio, one per test module,
initialised with a workspace folder, and checked on teardown to leave no process
behind (the run worker included)."""

from __future__ import annotations

import asyncio
import os

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from .lsp_helpers import CLIENT_CAPABILITIES, SERVER, WORKSPACE, alive, child_pids, inbox


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env={**os.environ}),
    scope="module",
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    inbox(lsp_client)
    await lsp_client.initialize_session(
        lsp.InitializeParams(
            capabilities=CLIENT_CAPABILITIES,
            root_uri=WORKSPACE.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=WORKSPACE.as_uri(), name="ws")],
        )
    )
    yield
    server = lsp_client._server
    children = child_pids(server.pid) if server is not None else set()
    assert children, "the server should have started its run worker"
    await lsp_client.shutdown_session()
    # the worker (and multiprocessing's helpers) must go with the server
    for _ in range(100):
        if not any(alive(pid) for pid in children):
            break
        await asyncio.sleep(0.05)
    leaked = [pid for pid in children if alive(pid)]
    assert not leaked, f"processes left behind by the server: {leaked}"
