"""A progress bar on stderr and a Ctrl-C flag for long runs.

On a terminal the bar is one line redrawn in place (at most ten times a second);
otherwise (a pipe, a CI log) it prints plain lines: the first report, then one line
per 5% of the run, then the last. Reports at fraction 0 are notes (such as the data
being used) and are printed as their own lines.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, TextIO

_REDRAW_SECONDS = 0.1
_PLAIN_BUCKETS = 20


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """``update(fraction, message)`` is the ``progress`` callback of ``quivers.jobs.run``."""

    def __init__(self, label: str, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if tty is None and isatty is not None else bool(tty)
        self.start = time.perf_counter()
        self.first: float | None = None  # when the first real step was reported
        self.first_fraction = 0.0
        self.last_draw = 0.0
        self.last_bucket = -1
        self.line_open = False
        self.fraction = 0.0
        self.message = ""

    def note(self, text: str) -> None:
        self._clear()
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def update(self, fraction: float, message: str) -> None:
        if fraction <= 0.0:
            self.note(message)
            return
        now = time.perf_counter()
        if self.first is None:  # time from the first step: compiling is not part of the rate
            self.first, self.first_fraction = now, fraction
            self.start = now
        self.fraction, self.message = min(max(fraction, 0.0), 1.0), message
        if self.tty:
            if now - self.last_draw >= _REDRAW_SECONDS or self.fraction >= 1.0:
                self.last_draw = now
                self._draw(now)
        else:
            bucket = int(self.fraction * _PLAIN_BUCKETS)  # 0 .. 20: the first and last print
            if bucket != self.last_bucket:
                self.last_bucket = bucket
                print(self._text(now, bar=False), file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.line_open:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
            self.line_open = False

    # ------------------------------------------------------------------ output

    def _text(self, now: float, bar: bool) -> str:
        elapsed = now - self.start
        percent = f"{self.fraction * 100:3.0f}%"
        if self.fraction >= 1.0:
            timing = f"{clock(elapsed)} elapsed"
        elif self.fraction > self.first_fraction:
            eta = elapsed * (1.0 - self.fraction) / (self.fraction - self.first_fraction)
            timing = f"{clock(elapsed)} elapsed, ETA {clock(eta)}"
        else:
            timing = f"{clock(elapsed)} elapsed, ETA --:--"
        head = f"{self.label} {percent}"
        if bar:
            width = 24
            filled = int(round(self.fraction * width))
            head = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {percent}"
        return f"{head} {self.message} · {timing}"

    def _draw(self, now: float) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        text = self._text(now, bar=True)[: max(columns - 1, 20)]
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self.line_open = True

    def _clear(self) -> None:
        if self.tty and self.line_open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.line_open = False


class StopOnInterrupt:
    """A ``should_stop`` callable that turns the first Ctrl-C (SIGINT) into a request.

    Inside ``with StopOnInterrupt(...) as stop:`` the first SIGINT only sets the flag
    (the run stops cleanly between iterations); a second one raises
    KeyboardInterrupt as usual. Outside the main thread it installs nothing.
    """

    def __init__(self, notice: TextIO | None = None) -> None:
        self.requested = False
        self.notice = notice if notice is not None else sys.stderr
        self._previous: Any = None
        self._installed = False

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.notice.write("\nstopping after the current step (Ctrl-C again to abort)\n")
            self.notice.flush()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
