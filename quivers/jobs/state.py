"""Fitted-state files, written by ``qvr fit`` and the editor's corpus fits and read by
``qvr sample --from`` and ``--resume``.

A state file is ``torch.save`` of a plain dict: ``format`` (``"qvr-state"``),
``version``, ``source`` (the .qvr path), ``target`` (the program), ``method``
(``svi``/``nuts``), ``seed``, ``steps_done`` and ``state_dict`` (the model's weights:
the fitted point estimate for SVI, the posterior mean of every weight for NUTS); a
corpus fit's checkpoint adds ``fit``, ``corpus`` and ``options``
(:mod:`quivers.jobs.corpus`). It loads with ``weights_only=True``. Files are written
atomically (a temporary file renamed over the target), so an interrupted write never
leaves a broken state.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

import torch

FORMAT = "qvr-state"
VERSION = 1

#: Test seam for the crash-safety test: when set to a FIFO path, a write that would
#: replace an existing state file stops half-way through the temporary file, says
#: "partial <tmp>" on the FIFO and waits there to be killed.
PAUSE_ENV = "QVR_TEST_PAUSE_STATE_WRITE"


class StateError(Exception):
    """A state file that cannot be written or read; the message names the file."""


def write_state(path: str | Path, state_dict: dict[str, Any], **meta: Any) -> None:
    """Write atomically: the whole file goes to ``<name>.tmp``, is flushed to disk,
    then renamed over ``path``; a crash at any point leaves the previous file whole."""
    p = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **meta, "state_dict": state_dict}
    tmp = p.with_name(p.name + ".tmp")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getvalue()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            pause = os.environ.get(PAUSE_ENV)
            if pause and p.exists():
                _pause_half_way(f, blob, tmp, pause)
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        raise StateError(f"{p}: cannot write the fitted state: {exc.strerror or exc}") from None


def _pause_half_way(f: BinaryIO, blob: bytes, tmp: Path, fifo: str) -> None:
    f.write(blob[: len(blob) // 2])
    f.flush()
    os.fsync(f.fileno())
    with open(fifo, "w") as signal_pipe:
        signal_pipe.write(f"partial {tmp}\n")
    threading.Event().wait()  # until the test kills the process


def read_state(path: str | Path) -> dict[str, Any]:
    """A state file's payload (tensors on the CPU), or a StateError saying why not."""
    p = Path(path)
    if not p.is_file():
        raise StateError(f"{p}: no such state file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise StateError(f"{p}: not a state file written by `qvr fit` ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise StateError(f"{p}: not a state file written by `qvr fit`")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StateError(f"{p}: the state file has no weights")
    return payload
