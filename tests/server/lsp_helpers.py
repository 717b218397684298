"""The one helper for end-to-end server tests: open, edit and query documents,
run commands, and wait on the server's notifications (never on sleeps).

Every notification the client receives is recorded in an ``Inbox`` (pytest-lsp keeps
only one waiter per method, which can miss a notification that arrives while a test is
between two waits); ``wait_for`` blocks until a recorded notification matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "source"
REFERENCE = (EXAMPLES / "vanilla_rnn_lm.qvr").read_text()
TIMEOUT = 30.0
SERVER = [sys.executable, "-m", "quivers_lsp"]

CLIENT_CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(
                snippet_support=True, documentation_format=[lsp.MarkupKind.Markdown]
            )
        ),
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown]),
        publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True),
        diagnostic=lsp.DiagnosticClientCapabilities(),
        semantic_tokens=lsp.SemanticTokensClientCapabilities(
            requests=lsp.ClientSemanticTokensRequestOptions(
                full=lsp.ClientSemanticTokensRequestFullDelta(delta=True), range=True
            ),
            token_types=[],
            token_modifiers=[],
            formats=[lsp.TokenFormat.Relative],
        ),
        rename=lsp.RenameClientCapabilities(prepare_support=True),
        inlay_hint=lsp.InlayHintClientCapabilities(),
        code_lens=lsp.CodeLensClientCapabilities(),
        folding_range=lsp.FoldingRangeClientCapabilities(),
        document_symbol=lsp.DocumentSymbolClientCapabilities(
            hierarchical_document_symbol_support=True
        ),
        signature_help=lsp.SignatureHelpClientCapabilities(),
        code_action=lsp.CodeActionClientCapabilities(),
        formatting=lsp.DocumentFormattingClientCapabilities(),
        document_highlight=lsp.DocumentHighlightClientCapabilities(),
        definition=lsp.DefinitionClientCapabilities(),
        references=lsp.ReferenceClientCapabilities(),
    ),
    workspace=lsp.WorkspaceClientCapabilities(
        symbol=lsp.WorkspaceSymbolClientCapabilities(),
        execute_command=lsp.ExecuteCommandClientCapabilities(),
    ),
    window=lsp.WindowClientCapabilities(work_done_progress=True),
)

_counter = itertools.count()

# A workspace folder with `.qvr` files that are never opened (workspace symbols).
WORKSPACE = Path(tempfile.mkdtemp(prefix="qvr-ws-"))
(WORKSPACE / "nested").mkdir()
(WORKSPACE / "on_disk.qvr").write_text(
    "object DiskOnlyObject : FinSet 3\nmorphism disk_kernel : DiskOnlyObject -> DiskOnlyObject"
    " [role=kernel]\n"
)
(WORKSPACE / "nested" / "deeper.qvr").write_text("object NestedThing : Real 2\n")


class Inbox:
    """Every notification from the server, in order, with a way to wait for one."""

    def __init__(self, client: LanguageClient) -> None:
        self.items: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        original = client.protocol._handle_notification

        def record(method: str, params: Any) -> None:
            self.items.append((method, params))
            self._changed.set()
            original(method, params)

        client.protocol._handle_notification = record  # type: ignore[method-assign]

    def mark(self) -> int:
        return len(self.items)

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        start: int = 0,
        timeout: float = TIMEOUT,
    ) -> Any:
        """The first notification ``method`` from index ``start`` on that matches."""

        async def scan() -> Any:
            seen = start
            while True:
                while seen < len(self.items):
                    name, params = self.items[seen]
                    seen += 1
                    if name == method and predicate(params):
                        return params
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)


def inbox(client: LanguageClient) -> Inbox:
    box = getattr(client, "_qvr_inbox", None)
    if box is None:
        box = Inbox(client)
        client._qvr_inbox = box  # type: ignore[attr-defined]
    return box


def new_uri(name: str = "doc") -> str:
    return f"file:///tmp/qvr-test/{name}-{next(_counter)}.qvr"


async def open_doc(
    client: LanguageClient, text: str, uri: str | None = None
) -> tuple[str, list[lsp.Diagnostic]]:
    """Open a document and wait for its first diagnostics."""
    uri = uri or new_uri()
    start = inbox(client).mark()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="qvr", version=1, text=text)
        )
    )
    return uri, await diagnostics_for(client, uri, 1, start)


async def change_doc(
    client: LanguageClient, uri: str, text: str, version: int
) -> list[lsp.Diagnostic]:
    """Replace the whole text and wait for the diagnostics of that version."""
    return await edit_doc(
        client, uri, version, [lsp.TextDocumentContentChangeWholeDocument(text=text)]
    )


async def edit_doc(
    client: LanguageClient,
    uri: str,
    version: int,
    changes: list[Any],
    wait: bool = True,
) -> list[lsp.Diagnostic]:
    """Send content changes (whole or ranged) and wait for that version's diagnostics."""
    start = inbox(client).mark()
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=changes,
        )
    )
    if not wait:
        return []
    return await diagnostics_for(client, uri, version, start)


async def diagnostics_for(
    client: LanguageClient, uri: str, version: int, start: int = 0
) -> list[lsp.Diagnostic]:
    """The diagnostics published for ``uri`` at ``version`` (or later)."""
    params = await inbox(client).wait_for(
        lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lambda p: p.uri == uri and p.version is not None and p.version >= version,
        start,
    )
    return list(params.diagnostics)


def close_doc(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=doc_id(uri)))


# ---------------------------------------------------------------- runs


async def run_command(
    client: LanguageClient, command: str, *arguments: Any, timeout: float = 120.0
) -> Any:
    return await asyncio.wait_for(
        client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=command, arguments=list(arguments))
        ),
        timeout,
    )


async def first_progress_report(
    client: LanguageClient, start: int, prefix: str = ""
) -> tuple[str, str]:
    """(token, message) of the first work-done progress report after index ``start``
    whose message starts with ``prefix``."""
    params = await inbox(client).wait_for(
        lsp.PROGRESS,
        lambda p: (
            isinstance(p.value, dict)
            and p.value.get("kind") == "report"
            and str(p.value.get("message", "")).startswith(prefix)
        ),
        start,
    )
    return params.token, params.value.get("message", "")


def progress_kinds(client: LanguageClient, token: str) -> list[str]:
    return [type(v).__name__ for v in client.progress_reports.get(token, [])]


# ---------------------------------------------------------------- processes


def child_pids(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pos(text: str, needle: str, occurrence: int = 0, offset: int = 0) -> lsp.Position:
    """The position of the ``occurrence``-th ``needle`` in ``text`` (plus ``offset``)."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(needle, start + 1)
    start += offset
    line = text.count("\n", 0, start)
    col = start - (text.rfind("\n", 0, start) + 1)
    return lsp.Position(line=line, character=col)


def doc_id(uri: str) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=uri)


# ------------------------------------------------------------- a raw client


class RawClient:
    """The server process over its pipes, spoken to in plain dicts or raw bytes (for
    broken frames and invalid params, which a typed client cannot send). Every message
    from the server is recorded; waits are on messages, with a timeout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._next_id = 0
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, env: dict[str, str] | None = None) -> RawClient:
        process = await asyncio.create_subprocess_exec(
            *SERVER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
            limit=2**26,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send_bytes(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def send_request(self, method: str, params: Any = None, omit_params: bool = False) -> int:
        msg_id = self.request_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if not omit_params:
            message["params"] = params
        self.send(message)
        return msg_id

    async def request(self, method: str, params: Any = None, omit_params: bool = False) -> Any:
        """The response (the whole message: ``result`` or ``error``)."""
        return await self.response(self.send_request(method, params, omit_params))

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def response(self, msg_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await self.wait(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    def responses(self, msg_id: Any) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("id") == msg_id and "method" not in m]

    async def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT, start: int = 0
    ) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            seen = start
            while True:
                while seen < len(self.messages):
                    message = self.messages[seen]
                    seen += 1
                    if predicate(message):
                        return message
                if self._reader.done():
                    raise EOFError("the server closed its output")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def diagnostics(self, uri: str, version: int, start: int = 0) -> dict[str, Any]:
        return await self.wait(
            lambda m: (
                m.get("method") == lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
                and m["params"]["uri"] == uri
                and (m["params"].get("version") or 0) >= version
            ),
            start=start,
        )

    async def initialize(
        self, root: Path | None = None, warm_worker: bool = True
    ) -> dict[str, Any]:
        """Initialize (``warm_worker`` False: no worker until a run needs one, which
        spares tests that run nothing a torch import)."""
        answer = await self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.as_uri() if root else None,
                "capabilities": {"window": {"workDoneProgress": True}},
                "initializationOptions": {"warmWorker": warm_worker},
            },
        )
        self.notify("initialized", {})
        return answer

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "qvr", "version": version, "text": text}},
        )

    async def stop(self) -> int:
        """shutdown, exit, and the exit code."""
        if self.process.returncode is None:
            await self.request("shutdown")
            self.notify("exit")
        return await asyncio.wait_for(self.process.wait(), TIMEOUT)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        while True:
            length = 0
            while True:
                header = await stdout.readline()
                if not header:
                    self._changed.set()
                    return
                if header == b"\r\n":
                    break
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            body = await stdout.readexactly(length)
            message = json.loads(body, parse_constant=_no_constant)
            if "method" in message and "id" in message:  # a request from the server
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            self.messages.append(message)
            self._changed.set()


def _no_constant(name: str) -> Any:
    """Bare NaN/Infinity are not JSON: vscode-jsonrpc rejects them, and so do we."""
    raise ValueError(f"the server sent a bare {name}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
