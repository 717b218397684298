"""Dense CKY for grammars whose rules are all CKY steps over ``span`` items.

The chart is one tensor per span width, ``(batch, starts, categories)``; a width's
cells are computed at once from every split point by :meth:`Semiring.bilinear` (a
batched outer product summed over splits, contracted with the binary-rule tensor),
followed by the closure of the unary rules (acyclic, so a finite sum of matrix
powers). Only the loop over widths runs in Python. Sentences of different lengths
share the batch: padding positions are the semiring's zero and each sentence reads
its goal at its own width.
"""

from __future__ import annotations

import torch

from quivers.core.deduction.grammar import CKYPlan
from quivers.runtime.deduction.semirings import Semiring


class CKYTensors:
    """The plan's index tensors (built once per module)."""

    def __init__(self, plan: CKYPlan, n_words: int, goal_cats: list[int]) -> None:
        self.plan = plan
        self.n_cats = c = len(plan.categories)
        self.n_words = n_words
        self.goal_cats = torch.tensor(goal_cats, dtype=torch.long)

        def t(rows: list[int]) -> torch.Tensor:
            return torch.tensor(rows, dtype=torch.long)

        self.lex_inst = t([inst for _, _, inst in plan.lexical])
        self.lex_cell = t([w * c + k for w, k, _ in plan.lexical])
        self.any_cell = t([n_words * c + k for _, k, _ in plan.lexical])  # the wildcard row
        self.un_inst = t([inst for _, _, inst in plan.unary])
        self.un_cell = t([a * c + b for a, b, _ in plan.unary])
        self.bin_inst = t([inst for _, _, _, inst in plan.binary])
        self.bin_cell = t([(x * c + y) * c + z for x, y, z, _ in plan.binary])

    def tables(
        self, sr: Semiring, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(lexicon (V + 2, C) with a pad row V and an any-word row V + 1, unary
        closure (C, C) or None, binary (C * C, C)), in the carrier."""
        c, v = self.n_cats, self.n_words
        lex = sr.scatter_sum(
            torch.cat([weights[self.lex_inst], weights[self.lex_inst]]),
            torch.cat([self.lex_cell, self.any_cell]),
            (v + 2) * c,
        ).reshape(v + 2, c)
        closure = None
        if len(self.un_inst):
            unary = sr.scatter_sum(weights[self.un_inst], self.un_cell, c * c).reshape(c, c)
            eye = torch.eye(c, dtype=weights.dtype, device=weights.device)
            ident = torch.where(eye > 0, sr.one, sr.zero).to(weights.dtype)
            closure, power = ident, ident
            for _ in range(self.plan.unary_depth):
                power = sr.matmul(power, unary)
                closure = sr.scatter_sum(
                    torch.cat([closure.reshape(-1), power.reshape(-1)]),
                    torch.arange(c * c, device=weights.device).repeat(2),
                    c * c,
                ).reshape(c, c)
        binary = sr.scatter_sum(weights[self.bin_inst], self.bin_cell, c * c * c).reshape(c * c, c)
        return lex, closure, binary

    def inside(
        self, sr: Semiring, weights: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The goal value of each sentence: ids (B, T) (pad = n_words, any word =
        n_words + 1), lengths (B,) -> (B,) in the carrier."""
        lex, closure, binary = self.tables(sr, weights)
        batch, longest = ids.shape
        cells = lex[ids]  # (B, T, C)
        if closure is not None:
            cells = sr.matmul(cells, closure)
        chart = {1: cells}
        tops = [cells[:, 0]]
        for width in range(2, longest + 1):
            n = longest - width + 1
            left = torch.stack([chart[k][:, :n] for k in range(1, width)], dim=2)
            right = torch.stack([chart[width - k][:, k : k + n] for k in range(1, width)], dim=2)
            cells = sr.bilinear(left, right, binary)
            if closure is not None:
                cells = sr.matmul(cells, closure)
            chart[width] = cells
            tops.append(cells[:, 0])
        top = torch.stack(tops, dim=1)  # (B, T, C): the cell [0, w) of every width
        at_length = top[torch.arange(batch), lengths - 1]  # (B, C)
        return sr.sum(at_length[:, self.goal_cats], dim=1)
