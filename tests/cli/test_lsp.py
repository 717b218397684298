"""qvr lsp: the language server answers ``initialize`` over stdio and exits cleanly."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .helpers import qvr_executable


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read(stream: Any) -> dict[str, Any]:
    length = 0
    while True:
        line = stream.readline()
        assert line, "the server closed its output"
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(stream.read(length))


def test_lsp_starts_the_language_server() -> None:
    proc = subprocess.Popen(
        [*qvr_executable(), "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        init = {"processId": None, "rootUri": None, "capabilities": {}}
        proc.stdin.write(
            _frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        )
        proc.stdin.flush()
        reply = _read(proc.stdout)
        while reply.get("id") != 1:  # skip notifications such as log messages
            reply = _read(proc.stdout)
        capabilities = reply["result"]["capabilities"]
        assert capabilities["hoverProvider"] and "completionProvider" in capabilities
        for message in (
            {"jsonrpc": "2.0", "method": "initialized", "params": {}},
            {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
            {"jsonrpc": "2.0", "method": "exit", "params": None},
        ):
            proc.stdin.write(_frame(message))
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
