"""The CLI's side of fitted-state files (the format: :mod:`quivers.jobs.state`): a
file that cannot be written or read is a one-line :class:`CliError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quivers.commands import CliError
from quivers.jobs.state import FORMAT, PAUSE_ENV, VERSION, StateError, read_state, write_state

__all__ = ["FORMAT", "PAUSE_ENV", "VERSION", "load_state", "save_state"]


def save_state(path: str | Path, state_dict: dict[str, Any], **meta: Any) -> None:
    try:
        write_state(path, state_dict, **meta)
    except StateError as exc:
        raise CliError(str(exc)) from None


def load_state(path: str | Path) -> dict[str, Any]:
    try:
        return read_state(path)
    except StateError as exc:
        raise CliError(str(exc)) from None
