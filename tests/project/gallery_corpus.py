"""The corpus of gallery-style programs in ``tests/data/gallery`` and their data.

Each file states how to feed it in comments: ``# rows: N`` (rows of the input),
``# length: T`` (sequence length for scan models) and ``# host: NAME KIND`` for host
data, KIND being ``normal``, ``positive``, ``arange`` or ``ids K`` (integer ids in
0..K-1). :func:`setup` gives the model, its input and host data for one file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from quivers.dsl import loads
from quivers.jobs.data import random_input, uses_sequences

from .helpers import ROOT

GALLERY = sorted((ROOT / "tests" / "data" / "gallery").glob("*.qvr"))


def _host(kind: str, rows: int) -> torch.Tensor:
    if kind == "normal":
        return torch.randn(rows)
    if kind == "positive":
        return torch.rand(rows) * 10.0 + 5.0
    if kind == "arange":
        return torch.arange(rows, dtype=torch.get_default_dtype())
    size = re.fullmatch(r"ids (\d+)", kind)
    assert size is not None, f"unknown host kind {kind!r}"
    return torch.randint(0, int(size.group(1)), (rows,))


def setup(path: Path) -> tuple[Any, torch.Tensor, dict[str, torch.Tensor]]:
    text = path.read_text("utf-8")
    rows = int(m.group(1)) if (m := re.search(r"^# rows: (\d+)", text, re.M)) else 20
    length = int(m.group(1)) if (m := re.search(r"^# length: (\d+)", text, re.M)) else 5
    model = loads(text, path.stem).morphism
    x = random_input(model.dom, rows, length, uses_sequences(model))
    hosts = {
        name: _host(kind.strip(), rows)
        for name, kind in re.findall(r"^# host: (\w+) (.+)$", text, re.M)
    }
    return model, x, hosts
