"""Fitted-state files written by ``qvr fit`` and read by ``qvr sample --from``.

A state file is ``torch.save`` of a plain dict: ``format`` (``"qvr-state"``),
``version``, ``source`` (the .qvr path), ``target`` (the program), ``method``
(``svi``/``nuts``), ``seed``, ``steps_done`` and ``state_dict`` (the model's weights:
the fitted point estimate for SVI, the posterior mean of every weight for NUTS).
It loads with ``weights_only=True``. Files are written atomically (a temporary file
renamed over the target), so an interrupted write never leaves a broken state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quivers.commands import CliError

FORMAT = "qvr-state"
VERSION = 1


def save_state(path: str | Path, state_dict: dict[str, Any], **meta: Any) -> None:
    import torch

    p = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **meta, "state_dict": state_dict}
    tmp = p.with_name(p.name + ".tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, p)
    except OSError as exc:
        raise CliError(f"{p}: cannot write the fitted state: {exc.strerror or exc}") from None


def load_state(path: str | Path) -> dict[str, Any]:
    import torch

    p = Path(path)
    if not p.is_file():
        raise CliError(f"{p}: no such state file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CliError(f"{p}: not a state file written by `qvr fit` ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CliError(f"{p}: not a state file written by `qvr fit`")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CliError(f"{p}: the state file has no weights")
    return payload
