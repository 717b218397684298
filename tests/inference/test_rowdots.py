"""``batched.rowdots``: wide rows take the per-pair path (no stacked copies), with
the very sums of the stacked one."""

from __future__ import annotations

import torch

from quivers.inference.batched import rowdots


def test_wide_rows_give_the_stacked_sums_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    wide = [(torch.randn(4, 10_000, generator=gen), torch.randn(4, 10_000, generator=gen))]
    wide = wide * 3
    assert wide[0][0].numel() > 32768  # the per-pair path
    left = torch.stack([a for a, _ in wide])
    right = torch.stack([b for _, b in wide])
    assert rowdots(wide) == (left * right).sum(-1).tolist()
    narrow = [(a[:, :100], b[:, :100]) for a, b in wide]
    assert rowdots(narrow) == [torch.linalg.vecdot(a, b).tolist() for a, b in narrow]
