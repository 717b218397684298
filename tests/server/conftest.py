"""pytest-lsp fixtures: the real server process over stdio, one per test module."""

from __future__ import annotations

import os
import sys

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from .lsp_helpers import CLIENT_CAPABILITIES

SERVER = [sys.executable, "-m", "quivers_lsp"]


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env={**os.environ}),
    scope="module",
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=CLIENT_CAPABILITIES, root_uri=None)
    )
    yield
    await lsp_client.shutdown_session()
