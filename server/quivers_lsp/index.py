"""The workspace index: top-level symbols of the `.qvr` files under the roots.

``workspace/symbol`` used to walk the whole root on the event loop for each request (a
root of ``/`` froze the server for 15-21 s; a FIFO named ``*.qvr`` froze it until
someone wrote to the FIFO; a directory vanishing mid-walk failed the request). Now a
background thread walks the roots with limits and the request answers from what is
indexed so far:

- only regular files are read (FIFOs, sockets and devices are skipped without opening
  them), files over ``MAX_FILE_BYTES`` are skipped, symbolic links are not followed
  (so no link loops), and hidden or ignored directories (``IGNORED``) are not entered;
- at most ``MAX_FILES`` `.qvr` files and ``MAX_ENTRIES`` directory entries per walk;
  reaching a cap stops the walk and says so in the log;
- a directory or file that vanishes or cannot be read is skipped.

A file is analysed again only when its size or modification time changed. The roots
are walked again when a request finds the last walk older than ``RESCAN_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path

from quivers.analysis import Document, outline
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache
from quivers_lsp import convert

logger = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_ENTRIES = 100_000
MAX_FILE_BYTES = 2_000_000
RESCAN_SECONDS = 5.0
IGNORED = frozenset(
    {"node_modules", "__pycache__", "venv", "site-packages", "build", "dist", "target"}
)


@dataclass(frozen=True, slots=True)
class IndexedSymbol:
    name: str
    kind: str
    detail: str
    range: lsp.Range  # of the name, in UTF-16 columns


class WorkspaceIndex:
    def __init__(self, cache: FrontendCache = DEFAULT_CACHE) -> None:
        self.cache = cache
        self.roots: list[Path] = []
        self.files: dict[str, tuple[tuple[int, int], list[IndexedSymbol]]] = {}
        self.capped = False
        self._lock = threading.Lock()
        self._walking = False
        self._last_walk = 0.0
        self.first_walk = threading.Event()

    def set_roots(self, uris: list[str]) -> None:
        roots = []
        for uri in uris:
            path = from_uri(uri)
            if path is not None and path.is_dir():
                roots.append(path)
        self.roots = roots
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Walk the roots in the background (unless a walk is running or recent)."""
        with self._lock:
            if self._walking or (not force and time.monotonic() - self._last_walk < RESCAN_SECONDS):
                return
            self._walking = True
        threading.Thread(target=self._walk, name="workspace index", daemon=True).start()

    def symbols(self, query: str, skip: set[str]) -> list[tuple[str, IndexedSymbol]]:
        """Indexed symbols matching ``query``, except in the files ``skip`` (open ones)."""
        out: list[tuple[str, IndexedSymbol]] = []
        for uri, (_, found) in list(self.files.items()):
            if uri in skip:
                continue
            out.extend((uri, s) for s in found if outline.matches(s.name.lower(), query.lower()))
        return out

    # ------------------------------------------------------------ the walk

    def _walk(self) -> None:
        try:
            seen: set[str] = set()
            entries = 0
            count = 0
            for root in list(self.roots):
                stack = [root]
                while stack:
                    directory = stack.pop()
                    try:
                        with os.scandir(directory) as it:
                            listing = list(it)
                    except OSError:
                        continue  # vanished, or not readable
                    for entry in sorted(listing, key=lambda e: e.name):
                        entries += 1
                        if entries > MAX_ENTRIES or count >= MAX_FILES:
                            self._cap(entries, count)
                            return
                        try:
                            if entry.is_symlink():
                                continue
                            if entry.is_dir(follow_symlinks=False):
                                if not entry.name.startswith(".") and entry.name not in IGNORED:
                                    stack.append(Path(entry.path))
                                continue
                            if not entry.name.endswith(".qvr"):
                                continue
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                            continue
                        count += 1
                        uri = from_fs_path(entry.path) or Path(entry.path).as_uri()
                        seen.add(uri)
                        self._index_file(uri, Path(entry.path), (info.st_size, info.st_mtime_ns))
            self.capped = False
            for uri in list(self.files):
                if uri not in seen:
                    self.files.pop(uri, None)
        except Exception:
            logger.exception("indexing the workspace failed")
        finally:
            with self._lock:
                self._walking = False
                self._last_walk = time.monotonic()
            self.first_walk.set()

    def _cap(self, entries: int, count: int) -> None:
        if not self.capped:
            logger.warning(
                "workspace index stopped at %d .qvr files and %d directory entries"
                " (limits %d and %d); workspace symbols come from those files only",
                count,
                entries,
                MAX_FILES,
                MAX_ENTRIES,
            )
        self.capped = True

    def _index_file(self, uri: str, path: Path, key: tuple[int, int]) -> None:
        known = self.files.get(uri)
        if known is not None and known[0] == key:
            return
        try:
            # O_NONBLOCK: should the file turn into a FIFO since the stat, do not wait
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return
                with os.fdopen(fd, "rb", closefd=False) as f:
                    raw = f.read(MAX_FILE_BYTES + 1)
            finally:
                os.close(fd)
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return
        if len(raw) > MAX_FILE_BYTES:
            return
        doc = Document(text, uri, cache=self.cache)
        found = [
            IndexedSymbol(s.name, s.kind, s.detail, convert.to_range(doc.lines, s.selection))
            for _, s in outline.workspace_symbols([doc], "")
        ]
        self.files[uri] = (key, found)


def from_uri(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None
