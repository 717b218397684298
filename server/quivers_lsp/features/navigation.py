"""Hover, definition, references, highlights, rename, symbols and folding."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from quivers.analysis import Document, outline
from quivers.analysis import navigation as nav
from quivers.analysis.hover import hover as hover_at
from quivers_lsp import convert
from quivers_lsp.protocol import RequestFailed
from quivers_lsp.state import State, off_loop

FIRST_WALK_WAIT = 1.0  # seconds


def register(server: LanguageServer, state: State) -> None:
    async def at(ls: LanguageServer, params: Any) -> tuple[Document, int, int]:
        doc = await state.document(ls, params.text_document.uri)
        line, col = convert.position_in(doc.lines, params.position)
        return doc, line, col

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc, line, col = await at(ls, params)
        found = hover_at(doc, line, col)
        if found is None:
            return None
        caps = ls.client_capabilities.text_document
        formats = caps.hover.content_format if caps and caps.hover else None
        # LSP: a client that states no format takes Markdown; one that lists formats
        # gets plain text when Markdown is not among them
        markdown = formats is None or lsp.MarkupKind.Markdown in formats
        return convert.hover(doc.lines, found, markdown)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: LanguageServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        doc, line, col = await at(ls, params)
        return [
            lsp.Location(uri=doc.uri, range=convert.to_range(doc.lines, r))
            for r in nav.definition(doc, line, col)
        ]

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    async def references(ls: LanguageServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        doc, line, col = await at(ls, params)
        found = await off_loop(nav.references, doc, line, col, params.context.include_declaration)
        return [lsp.Location(uri=doc.uri, range=convert.to_range(doc.lines, r)) for r in found]

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
    async def highlight(
        ls: LanguageServer, params: lsp.DocumentHighlightParams
    ) -> list[lsp.DocumentHighlight]:
        doc, line, col = await at(ls, params)
        return [
            lsp.DocumentHighlight(
                range=convert.to_range(doc.lines, r),
                kind=lsp.DocumentHighlightKind.Write if write else lsp.DocumentHighlightKind.Read,
            )
            for r, write in await off_loop(nav.highlights, doc, line, col)
        ]

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(
        ls: LanguageServer, params: lsp.PrepareRenameParams
    ) -> lsp.PrepareRenamePlaceholder | None:
        doc, line, col = await at(ls, params)
        found = nav.prepare_rename(doc, line, col)
        if found is None:
            return None
        rng, name = found
        return lsp.PrepareRenamePlaceholder(
            range=convert.to_range(doc.lines, rng), placeholder=name
        )

    @server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
    async def rename(ls: LanguageServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        doc, line, col = await at(ls, params)
        try:
            edits = await off_loop(nav.rename, doc, line, col, params.new_name)
        except nav.RenameError as exc:
            raise RequestFailed(str(exc)) from exc
        return lsp.WorkspaceEdit(
            changes={doc.uri: [convert.text_edit(doc.lines, e) for e in edits]}
        )

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def symbols(
        ls: LanguageServer, params: lsp.DocumentSymbolParams
    ) -> list[lsp.DocumentSymbol]:
        doc = await state.document(ls, params.text_document.uri)
        return await off_loop(
            lambda: [convert.document_symbol(doc.lines, s) for s in outline.document_symbols(doc)]
        )

    @server.feature(lsp.WORKSPACE_SYMBOL)
    async def workspace_symbols(
        ls: LanguageServer, params: lsp.WorkspaceSymbolParams
    ) -> list[lsp.WorkspaceSymbol]:
        """Open documents at their current text, the rest from the workspace index
        (walked in the background; a request waits briefly for the first walk only)."""
        index = state.index
        index.refresh()
        if not index.first_walk.is_set():
            await asyncio.to_thread(index.first_walk.wait, FIRST_WALK_WAIT)
        docs = await state.open_documents(ls)
        by_uri = {d.uri: d for d in docs}
        out = [
            lsp.WorkspaceSymbol(
                name=s.name,
                kind=convert.symbol_kind(s.kind),
                location=lsp.Location(
                    uri=uri, range=convert.to_range(by_uri[uri].lines, s.selection)
                ),
                container_name=s.detail or None,
            )
            for uri, s in outline.workspace_symbols(docs, params.query)
        ]
        out.extend(
            lsp.WorkspaceSymbol(
                name=s.name,
                kind=convert.symbol_kind(s.kind),
                location=lsp.Location(uri=uri, range=s.range),
                container_name=s.detail or None,
            )
            for uri, s in index.symbols(params.query, skip={d.uri for d in docs})
        )
        return out

    @server.feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
    async def folding(ls: LanguageServer, params: lsp.FoldingRangeParams) -> list[lsp.FoldingRange]:
        doc = await state.document(ls, params.text_document.uri)
        kinds = {"region": lsp.FoldingRangeKind.Region, "comment": lsp.FoldingRangeKind.Comment}
        return [
            lsp.FoldingRange(start_line=a, end_line=b, kind=kinds[k])
            for a, b, k in await off_loop(outline.folding_ranges, doc)
        ]
