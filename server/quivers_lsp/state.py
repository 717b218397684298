"""Server state: the analysed documents, debounced diagnostics, workspace files."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument, Workspace

from quivers.analysis import Document
from quivers_lsp import convert

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

    from quivers_lsp.worker import RunWorker

DEBOUNCE_SECONDS = 0.03
MAX_WORKSPACE_FILES = 2000


class QvrTextDocument(TextDocument):
    """A text document whose lines end only at '\n' (so also at '\r\n').

    pygls splits with ``str.splitlines``, which also breaks at '\x0b', '\x0c',
    '\x1c'-'\x1e', '\x85', '\u2028' and '\u2029': none of them ends a line for an LSP
    client or for the analysis, so an incremental edit after such a character (pasted
    text, a form feed) landed on the wrong line and the server's text drifted from the
    client's.
    """

    @property
    def lines(self) -> tuple[str, ...]:
        parts = self.source.split("\n")
        out = [part + "\n" for part in parts[:-1]]
        if parts[-1]:
            out.append(parts[-1])
        return tuple(out)


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


class State:
    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.workspace_roots: list[Path] = []
        self._disk: dict[Path, tuple[float, Document]] = {}
        self.worker: RunWorker | None = None
        self.tokens: dict[str, tuple[str, Sequence[int]]] = {}  # uri -> last semantic tokens
        self._token_results = 0

    # ------------------------------------------------------------ documents

    def document(self, ls: LanguageServer, uri: str) -> Document:
        """The analysis of the document's current text (re-analysed when it changed)."""
        text_doc = ls.workspace.get_text_document(uri)
        text = text_doc.source
        cached = self.docs.get(uri)
        if cached is not None and cached.text == text:
            cached.version = text_doc.version
            return cached
        doc = Document(text, uri, text_doc.version)
        self.docs[uri] = doc
        return doc

    def remember_tokens(self, uri: str, data: Sequence[int]) -> str:
        """Keep the semantic tokens sent for ``uri``; their result id for deltas."""
        self._token_results += 1
        result_id = str(self._token_results)
        self.tokens[uri] = (result_id, data)
        return result_id

    def forget(self, uri: str) -> None:
        self.docs.pop(uri, None)
        self.tokens.pop(uri, None)
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()

    # ---------------------------------------------------------- diagnostics

    def schedule_diagnostics(
        self, ls: LanguageServer, uri: str, delay: float = DEBOUNCE_SECONDS
    ) -> None:
        task = self.pending.get(uri)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(
            self._publish_later(ls, uri, delay)
        )

    async def _publish_later(self, ls: LanguageServer, uri: str, delay: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(delay)
            self.publish(ls, uri)

    def publish(self, ls: LanguageServer, uri: str) -> None:
        doc = self.document(ls, uri)
        lines = doc.lines
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=uri,
                version=doc.version,
                diagnostics=[convert.diagnostic(lines, d) for d in doc.analysis.diagnostics],
            )
        )

    # ------------------------------------------------------------ workspace

    def workspace_documents(self) -> list[Document]:
        """Open documents plus the `.qvr` files under the workspace roots."""
        out = dict(self.docs)
        count = 0
        for root in self.workspace_roots:
            for path in sorted(root.rglob("*.qvr")):
                count += 1
                if count > MAX_WORKSPACE_FILES:
                    break
                uri = from_fs_path(str(path)) or path.as_uri()
                if uri in out:
                    continue
                doc = self._from_disk(path, uri)
                if doc is not None:
                    out[uri] = doc
        return list(out.values())

    def _from_disk(self, path: Path, uri: str) -> Document | None:
        try:
            mtime = path.stat().st_mtime
            hit = self._disk.get(path)
            if hit is not None and hit[0] == mtime:
                return hit[1]
            doc = Document(path.read_text(encoding="utf-8"), uri)
        except (OSError, UnicodeDecodeError):
            return None
        self._disk[path] = (mtime, doc)
        return doc

    def set_roots(self, uris: list[str]) -> None:
        roots = []
        for uri in uris:
            path = to_fs_path(uri)
            if path and Path(path).is_dir():
                roots.append(Path(path))
        self.workspace_roots = roots
