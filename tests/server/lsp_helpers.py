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
import os
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
