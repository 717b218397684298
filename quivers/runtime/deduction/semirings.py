"""The semirings a deduction is computed in (Goodman 1999, "Semiring parsing").

Values live in a *carrier*: log space for ``LogProb`` (plus = logsumexp) and
``Viterbi`` (plus = max), linear space for ``Real`` (probabilities), ``Counting``
(derivation counts) and ``Boolean`` (0./1.). Every operation works on whole tensors:
the CKY engine calls :meth:`Semiring.bilinear` once per span width, the hypergraph
engine :meth:`Semiring.scatter_sum` once per level.

Log-space sums shift by a detached maximum, and an all-zero sum is mapped to -inf
through a masked log, so empty cells stay exact (-inf) and never produce NaN
gradients.
"""

from __future__ import annotations

import math

import torch


class Semiring:
    name = ""
    zero = 0.0
    one = 1.0

    def weight(self, log_w: torch.Tensor) -> torch.Tensor:
        """Carrier values of (normalised) log weights."""
        raise NotImplementedError

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prod(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        raise NotImplementedError

    def sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        raise NotImplementedError

    def scatter_sum(self, values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
        """out[j] = the semiring sum of values[index == j] (zero where none)."""
        raise NotImplementedError

    def matmul(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(..., A) x (A, C) -> (..., C)."""
        raise NotImplementedError

    def bilinear(self, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """out[b, i, c] = sum_k sum_{x, y} left[b, i, k, x] * right[b, i, k, y] * w[x * C + y, c],
        for left/right (B, n, K, C) and w (C * C, C): one CKY width step."""
        raise NotImplementedError

    def to_log(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def full(self, shape: tuple[int, ...], value: float, like: torch.Tensor) -> torch.Tensor:
        return torch.full(shape, value, dtype=like.dtype, device=like.device)


def _masked_log(s: torch.Tensor) -> torch.Tensor:
    positive = s > 0
    return torch.where(positive, torch.log(torch.where(positive, s, torch.ones_like(s))), -math.inf)


def _shift(x: torch.Tensor, dim: int) -> torch.Tensor:
    """A detached finite maximum along ``dim`` (0 where the whole slice is -inf)."""
    m = x.detach().amax(dim, keepdim=True)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


class LogProb(Semiring):
    name = "LogProb"
    zero = -math.inf
    one = 0.0

    def weight(self, log_w: torch.Tensor) -> torch.Tensor:
        return log_w

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def prod(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.sum(dim)

    def sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        m = _shift(x, dim)
        return (_masked_log(torch.exp(x - m).sum(dim, keepdim=True)) + m).squeeze(dim)

    def scatter_sum(self, values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
        m = self.full((size,), -math.inf, values).scatter_reduce(
            0, index, values.detach(), "amax", include_self=True
        )
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        s = torch.zeros(size, dtype=values.dtype, device=values.device).index_add(
            0, index, torch.exp(values - m[index])
        )
        return _masked_log(s) + m

    def matmul(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        shift = _shift(x, -1)
        return _masked_log(torch.exp(x - shift) @ torch.exp(m)) + shift

    def bilinear(self, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, n, k, c = left.shape
        ml, mr = _shift(left, -1), _shift(right, -1)
        scale = ml + mr  # (B, n, K, 1)
        top = _shift(scale, 2)  # (B, n, 1, 1)
        lw = torch.exp(left - ml + (scale - top))
        rw = torch.exp(right - mr)
        pairs = torch.einsum("bnkx,bnky->bnxy", lw, rw).reshape(b, n, c * c)
        return _masked_log(pairs @ torch.exp(w)) + top.reshape(b, n, 1)

    def to_log(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Viterbi(LogProb):
    """Max-plus: the best derivation's log weight (LogProb's carrier and product)."""

    name = "Viterbi"

    def sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.amax(dim)

    def scatter_sum(self, values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
        return self.full((size,), -math.inf, values).scatter_reduce(
            0, index, values, "amax", include_self=True
        )

    def matmul(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(-1) + m).amax(-2)

    def bilinear(self, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, n, k, c = left.shape
        pairs = (left.unsqueeze(-1) + right.unsqueeze(-2)).amax(2).reshape(b, n, c * c)
        return (pairs.unsqueeze(-1) + w).amax(-2)


class Real(Semiring):
    """The sum-product over probabilities (linear space)."""

    name = "Real"

    def weight(self, log_w: torch.Tensor) -> torch.Tensor:
        return torch.exp(log_w)

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b

    def prod(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.prod(dim)

    def sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.sum(dim)

    def scatter_sum(self, values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
        return torch.zeros(size, dtype=values.dtype, device=values.device).index_add(
            0, index, values
        )

    def matmul(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return x @ m

    def bilinear(self, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, n, k, c = left.shape
        return torch.einsum("bnkx,bnky->bnxy", left, right).reshape(b, n, c * c) @ w

    def to_log(self, x: torch.Tensor) -> torch.Tensor:
        return _masked_log(x)


class Counting(Real):
    """The number of derivations: every rule instance and entry weighs 1."""

    name = "Counting"

    def weight(self, log_w: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(log_w)


class Boolean(Real):
    """Recognition: 1. when some derivation exists, else 0."""

    name = "Boolean"

    def weight(self, log_w: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(log_w)

    def sum(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.amax(dim)

    def prod(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.amin(dim)

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.minimum(a, b)

    def scatter_sum(self, values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
        return self.full((size,), 0.0, values).scatter_reduce(
            0, index, values, "amax", include_self=True
        )

    def matmul(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return ((x @ m) > 0).to(x.dtype)

    def bilinear(self, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (super().bilinear(left, right, w) > 0).to(left.dtype)


SEMIRING_TYPES: dict[str, type[Semiring]] = {
    s.name: s for s in (LogProb, Viterbi, Real, Counting, Boolean)
}


def semiring(name: str) -> Semiring:
    return SEMIRING_TYPES[name]()
