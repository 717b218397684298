"""Server state: the open documents and their analyses, semantic-token results, the
workspace index and the run worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types as lsp
from pygls.workspace import TextDocument, Workspace

from quivers.analysis import Document
from quivers.syntax.cache import FrontendCache
from quivers_lsp import convert
from quivers_lsp.analyser import DocumentAnalyser
from quivers_lsp.index import WorkspaceIndex
from quivers_lsp.protocol import InvalidParams

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

    from quivers_lsp.worker import RunWorker

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a whole-document query (semantic tokens, symbols, references, formatting...)
    in a thread: on a 20,000-line file one takes long enough to hold up requests on
    every other document if it ran on the event loop."""
    return await asyncio.to_thread(fn, *args)


class QvrTextDocument(TextDocument):
    """A text document whose lines end only at '\\n' (so also at '\\r\\n').

    pygls splits with ``str.splitlines``, which also breaks at '\\x0b', '\\x0c',
    '\\x1c'-'\\x1e', '\\x85', '\\u2028' and '\\u2029': none of them ends a line for an LSP
    client or for the analysis, so an incremental edit after such a character (pasted
    text, a form feed) landed on the wrong line and the server's text drifted from the
    client's.

    Incremental edits are applied by offset (pygls rebuilt the whole text line by line
    in Python: milliseconds per keystroke on 20,000 lines), and a reversed range (end
    before start) is applied normalised, with a log message, instead of being dropped.
    """

    @property
    def lines(self) -> tuple[str, ...]:
        parts = self.source.split("\n")
        out = [part + "\n" for part in parts[:-1]]
        if parts[-1]:
            out.append(parts[-1])
        return tuple(out)

    def _apply_incremental_change(self, change: lsp.TextDocumentContentChangePartial) -> None:
        source = self.source
        lines = source.split("\n")
        start, end = change.range.start, change.range.end
        if (end.line, end.character) < (start.line, start.character):
            logger.warning(
                "%s: an edit range ends before it starts (%d:%d-%d:%d); applied normalised",
                self.uri,
                start.line,
                start.character,
                end.line,
                end.character,
            )
            start, end = end, start
        a, b = _offset(source, lines, start), _offset(source, lines, end)
        self._source = source[:a] + change.text + source[b:]


def _offset(source: str, lines: list[str], pos: lsp.Position) -> int:
    """The code-point offset of a UTF-16 position (clamped to the text, as LSP says)."""
    if pos.line >= len(lines):
        return len(source)
    line = lines[pos.line]
    before = sum(map(len, lines[: pos.line])) + pos.line
    return before + convert.codepoint_col(line, pos.character)


def use_qvr_documents(workspace: Workspace) -> None:
    """Make ``workspace`` create ``QvrTextDocument``s (call before any didOpen)."""

    def create(
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return QvrTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=workspace._sync_kind,
            position_codec=workspace.position_codec,
        )

    workspace._create_text_document = create  # type: ignore[method-assign]


def _warm(doc: Document) -> None:
    """In the analysis thread: the unit lookups every position query starts from (a
    cached_property: on Python 3.11 its lock is shared by all documents, so computing
    it on the loop for a large file would also hold up queries on small ones)."""
    doc.located  # noqa: B018
    doc._starts  # noqa: B018


class State:
    def __init__(self) -> None:
        self.analysers: dict[str, DocumentAnalyser] = {}
        # the workspace index's memo tables; each open document has its own (below), so
        # that closing a document frees all of its parses, checks and tokens at once
        self.index = WorkspaceIndex(FrontendCache())
        self.worker: RunWorker | None = None
        self.run_active = False  # a run command is between its guard and its answer
        self.tokens: dict[str, tuple[str, Sequence[int]]] = {}  # uri -> last semantic tokens
        self._token_results = 0

    # ------------------------------------------------------------ documents

    def text_document(self, ls: LanguageServer, uri: str) -> TextDocument:
        """The open document ``uri`` (an InvalidParams error when it is not open: the
        server never reads unopened files on a request, which could be FIFOs)."""
        found = ls.workspace.text_documents.get(uri)
        if found is None:
            raise InvalidParams(f"the document {uri} is not open")
        return found

    async def document(self, ls: LanguageServer, uri: str) -> Document:
        """The analysis of the document's current text (waiting for it if need be)."""
        text_doc = self.text_document(ls, uri)
        return await self._analyser(ls, uri).document(text_doc.source, text_doc.version)

    def changed(self, ls: LanguageServer, uri: str) -> None:
        """The document was opened, edited or saved: analyse it (off the loop). When
        its text is the one last analysed (a save, an undo, an empty edit), publish
        that analysis again at once, with the new version."""
        text_doc = self.text_document(ls, uri)
        analyser = self._analyser(ls, uri)
        analyser.want(text_doc.source, text_doc.version)
        latest = analyser.latest
        if latest is not None and latest.text == text_doc.source:
            self._publish(ls, uri, latest, analyser.extra)

    def _analyser(self, ls: LanguageServer, uri: str) -> DocumentAnalyser:
        analyser = self.analysers.get(uri)
        if analyser is None:
            converter = ls.protocol._converter

            def prepare(doc: Document) -> list[Any]:
                """In the analysis thread: what a publish needs, as plain JSON data."""
                return [
                    converter.unstructure(convert.diagnostic(doc.lines, d))
                    for d in doc.analysis.diagnostics
                ]

            def done(doc: Document, diagnostics: list[Any]) -> None:
                self._publish(ls, uri, doc, diagnostics)

            analyser = DocumentAnalyser(
                uri, asyncio.get_running_loop(), done, prepare, _warm, FrontendCache()
            )
            self.analysers[uri] = analyser
        return analyser

    def _publish(self, ls: LanguageServer, uri: str, doc: Document, diagnostics: Any) -> None:
        current = ls.workspace.text_documents.get(uri)
        if current is None or current.source != doc.text:
            return  # closed, or a newer version is on its way
        ls.protocol._send_data(
            {
                "jsonrpc": "2.0",
                "method": lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
                "params": {"uri": uri, "version": current.version, "diagnostics": diagnostics},
            }
        )

    def remember_tokens(self, uri: str, data: Sequence[int]) -> str:
        """Keep the semantic tokens sent for ``uri``; their result id for deltas."""
        self._token_results += 1
        result_id = str(self._token_results)
        self.tokens[uri] = (result_id, data)
        return result_id

    def forget(self, uri: str) -> None:
        """didClose: drop everything held for the document (its analysis included)."""
        analyser = self.analysers.pop(uri, None)
        if analyser is not None:
            analyser.close()
        self.tokens.pop(uri, None)

    # ------------------------------------------------------------ workspace

    async def open_documents(self, ls: LanguageServer) -> list[Document]:
        """The current analysis of every open document."""
        uris = list(ls.workspace.text_documents)
        found = await asyncio.gather(
            *(self.document(ls, uri) for uri in uris), return_exceptions=True
        )
        return [d for d in found if isinstance(d, Document)]
