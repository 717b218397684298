"""The one helper for end-to-end server tests: open, edit and query documents,
waiting on the server's notifications (never on sleeps)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "source"
REFERENCE = (EXAMPLES / "vanilla_rnn_lm.qvr").read_text()
TIMEOUT = 30.0

CLIENT_CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(snippet_support=True)
        ),
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown]),
        publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True),
        diagnostic=lsp.DiagnosticClientCapabilities(),
        semantic_tokens=lsp.SemanticTokensClientCapabilities(
            requests=lsp.ClientSemanticTokensRequestOptions(full=True, range=True),
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


def new_uri(name: str = "doc") -> str:
    return f"file:///tmp/qvr-test/{name}-{next(_counter)}.qvr"


async def open_doc(
    client: LanguageClient, text: str, uri: str | None = None
) -> tuple[str, list[lsp.Diagnostic]]:
    """Open a document and wait for its first diagnostics."""
    uri = uri or new_uri()
    waiter = asyncio.ensure_future(_diagnostics_for(client, uri, 1))
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="qvr", version=1, text=text)
        )
    )
    return uri, await asyncio.wait_for(waiter, TIMEOUT)


async def change_doc(
    client: LanguageClient, uri: str, text: str, version: int
) -> list[lsp.Diagnostic]:
    """Replace the whole text and wait for the diagnostics of that version."""
    waiter = asyncio.ensure_future(_diagnostics_for(client, uri, version))
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return await asyncio.wait_for(waiter, TIMEOUT)


async def _diagnostics_for(client: LanguageClient, uri: str, version: int) -> list[lsp.Diagnostic]:
    while True:
        params = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if params.uri == uri and (params.version is None or params.version >= version):
            return list(params.diagnostics)


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
