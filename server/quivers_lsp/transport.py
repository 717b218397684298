"""The byte stream under JSON-RPC: frames cut from stdin, tolerant of broken clients.

pygls' reader waits for an exact ``Content-Length: N\\r\\n`` line; after a frame with a
wrong length, a missing or lowercase header or LF-only line ends it lost its place, and
every later request went unanswered until the client happened to send a CRLF. Here
the header name is matched case-insensitively, line ends may be CRLF or LF, and after a
broken frame the reader resynchronises on the next valid header. A raw
``Content-Length: N`` line followed by a line end cannot occur inside a JSON body (JSON
strings escape their line breaks), so it is a safe place to resume.

stdin is read by the event loop itself (a pipe transport), not by a thread pool as in
pygls: a thread needs the GIL to hand each chunk over, and the analysis threads hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?\n", re.IGNORECASE)
FIELD = re.compile(rb"[A-Za-z0-9-]+[ \t]*:[^\r\n]*\r?\n")  # another header field
BLANK = re.compile(rb"[ \t]*\r?\n")
MAX_BODY = 1 << 30
MAX_FIELD = 4096  # a header line longer than this is not a header
_KEEP = 64  # bytes kept while no header is found: the start of one may be among them


@dataclass(frozen=True, slots=True)
class Frame:
    """A message body, or (``body`` None) a note on bytes that were skipped."""

    body: bytes | None
    problem: str | None = None


class Framer:
    """Cuts a byte stream into message bodies (``feed`` returns the complete ones)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        out: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return out
            out.append(frame)

    def _skip(self, count: int, why: str) -> Frame | None:
        skipped = bytes(self.buffer[:count])
        del self.buffer[:count]
        if not skipped.strip() or _only_fields(skipped):
            return None  # blank lines or header fields before Content-Length
        return Frame(None, f"skipped {len(skipped)} bytes ({why})")

    def _next(self) -> Frame | None:
        while True:
            buf = self.buffer
            header = HEADER.search(buf)
            if header is None:
                if len(buf) > _KEEP:
                    note = self._skip(len(buf) - _KEEP, "no message header")
                    if note is not None:
                        return note
                return None
            if header.start() > 0:
                note = self._skip(header.start(), "not inside a message")
                if note is not None:
                    return note
                continue
            pos = header.end()
            while True:  # the other header fields, up to the blank line
                if BLANK.match(buf, pos):
                    pos = BLANK.match(buf, pos).end()  # type: ignore[union-attr]
                    break
                field = FIELD.match(buf, pos)
                if field is not None:
                    pos = field.end()
                    continue
                if buf.find(b"\n", pos) < 0 and len(buf) - pos < MAX_FIELD:
                    return None  # the line is not complete yet
                # a line that is no header field: the blank line is missing
                del buf[: header.end()]
                return Frame(None, "a message header without the blank line after it")
            length = int(header.group(1))
            if length > MAX_BODY:
                del buf[:pos]
                return Frame(None, f"a message of {length} bytes is too large")
            later = HEADER.search(buf, pos, pos + length)
            if later is not None:
                # the next message starts inside this one's claimed length: the length
                # was too large, so this body ends where that header begins
                body = bytes(buf[pos : later.start()])
                del buf[: later.start()]
                return Frame(body, f"Content-Length {length} ran into the next message")
            if len(buf) - pos < length:
                return None
            body = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            return Frame(body)


def _only_fields(data: bytes) -> bool:
    lines = data.splitlines(keepends=True)
    return all(FIELD.fullmatch(line) or not line.strip() for line in lines)


async def read_stdin(
    on_frame: Callable[[Frame], None], stop: threading.Event, stdin: int | None = None
) -> None:
    """Feed ``on_frame`` with the frames read from stdin until it ends or ``stop``."""
    fd = sys.stdin.buffer.fileno() if stdin is None else stdin
    loop = asyncio.get_running_loop()
    framer = Framer()
    reader = asyncio.StreamReader(limit=2**26, loop=loop)
    try:
        pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except (OSError, ValueError):
        # not a pipe (a regular file, say): read it in a thread
        pipe = None
        reader = _thread_reader(fd, loop)
    while not stop.is_set():
        data = await reader.read(1 << 16)
        if not data:
            return
        for frame in framer.feed(data):
            if frame.problem is not None:
                logger.warning("malformed input: %s", frame.problem)
            on_frame(frame)


def _thread_reader(fd: int, loop: asyncio.AbstractEventLoop) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(loop=loop)

    def pump() -> None:
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                loop.call_soon_threadsafe(reader.feed_eof)
                return
            loop.call_soon_threadsafe(reader.feed_data, data)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return reader


class StdoutWriter:
    """Writes whole messages to stdout (pygls' writer interface)."""

    def __init__(self, fd: int | None = None) -> None:
        self._out = sys.stdout.buffer if fd is None else os.fdopen(fd, "wb")
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._out.write(data)
            self._out.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._out.flush()
