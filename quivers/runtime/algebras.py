"""The nine composition algebras of ``vocabulary.ALGEBRAS``.

A finite-set morphism A -> B is an (|A|, |B|) matrix over the algebra's carrier; a
relation with values p in (0, 1) enters the carrier through :meth:`Algebra.from_prob`
(p, log p or -log p, or p > 0.5). Composition contracts the middle index with the
algebra's ``plus`` over its ``times`` (a semiring matrix product; the fuzzy/residuated
ones are the usual t-norm compositions, e.g. Hajek, *Metamathematics of Fuzzy Logic*,
1998). ``max_plus`` over log-probabilities scores the Viterbi path (Viterbi, 1967).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from quivers.core.vocabulary import ALGEBRAS
from quivers.runtime.errors import QvrBuildError


class Algebra:
    """A semiring-like structure on relation matrices."""

    name: str = ""
    log_space = False  # carrier is log p (or -log p): rows are logits when sampled
    # composition is associative (a semiring product); if not, powers are taken left
    # to right so that repeat(f, n) equals the chain f >> f >> ... >> f
    associative = True

    def from_prob(self, p: torch.Tensor) -> torch.Tensor:
        return p

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Carrier of sigmoid(logits), computed stably."""
        return self.from_prob(torch.sigmoid(logits))

    def from_log_prob(self, logp: torch.Tensor) -> torch.Tensor:
        """Carrier of exp(logp) (for row-stochastic matrices given as log-softmax)."""
        return self.from_prob(logp.exp())

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def plus(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        raise NotImplementedError

    def compose(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(A, B) x (B, C) -> (A, C): plus over j of times(a[i, j], b[j, k])."""
        return self.plus(self.times(a.unsqueeze(-1), b.unsqueeze(0)), dim=1)

    def unit(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """The identity relation on n elements."""
        return torch.eye(n, dtype=like.dtype, device=like.device)

    def row_logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-weights for sampling a successor from carrier rows.

        A zero weight is an impossible successor: log 0 = -inf, never a clamped
        finite number (log(tiny) = -87 in float32 would score an impossible step as
        merely unlikely). The clamp only keeps the gradient of the masked log finite.
        A row with no successor at all keeps its clamped (uniform) weights: an all
        -inf row has no normalisation (log_softmax would give NaN).
        """
        logs = torch.log(rows.clamp_min(torch.finfo(rows.dtype).tiny))
        possible = rows > 0
        dead = ~possible.any(-1, keepdim=True)
        return torch.where(possible | dead, logs, -math.inf)

    def power(self, a: torch.Tensor, n: int) -> torch.Tensor:
        """n-fold composition, ((a a) a) ... a: by repeated squaring (O(log n) products)
        when composition is associative, one factor at a time otherwise."""
        if not self.associative:
            out = self.unit(a.shape[0], a)
            for _ in range(n):
                out = self.compose(out, a)
            return out
        result: torch.Tensor | None = None
        base = a
        while n > 0:
            if n & 1:
                result = base if result is None else self.compose(result, base)
            n >>= 1
            if n:
                base = self.compose(base, base)
        return self.unit(a.shape[0], a) if result is None else result


class Markov(Algebra):
    name = "markov"

    def times(self, a, b):
        return a * b

    def plus(self, t, dim):
        return t.sum(dim)

    def compose(self, a, b):
        return a @ b  # the ordinary matrix product, without the (A, B, C) intermediate


class ProductFuzzy(Algebra):
    name = "product_fuzzy"
    # noisy-or does not distribute over the product: (f g) h != f (g h) in general
    associative = False

    def times(self, a, b):
        return a * b

    def plus(self, t, dim):  # probabilistic sum (noisy-or)
        return 1 - torch.prod(1 - t, dim)


class LogProb(Algebra):
    name = "log_prob"
    log_space = True

    def from_prob(self, p):
        return torch.log(p)

    def from_logits(self, logits):
        return F.logsigmoid(logits)

    def from_log_prob(self, logp):
        return logp

    def times(self, a, b):
        return a + b

    def plus(self, t, dim):
        return torch.logsumexp(t, dim)

    def unit(self, n, like):
        u = torch.full((n, n), -math.inf, dtype=like.dtype, device=like.device)
        return u.fill_diagonal_(0.0)

    def row_logits(self, rows):
        return rows


class MaxPlus(LogProb):
    name = "max_plus"

    def plus(self, t, dim):
        return t.amax(dim)


class Tropical(Algebra):
    name = "tropical"
    log_space = True

    def from_prob(self, p):
        return -torch.log(p)

    def from_logits(self, logits):
        return -F.logsigmoid(logits)

    def from_log_prob(self, logp):
        return -logp

    def times(self, a, b):
        return a + b

    def plus(self, t, dim):
        return t.amin(dim)

    def unit(self, n, like):
        u = torch.full((n, n), math.inf, dtype=like.dtype, device=like.device)
        return u.fill_diagonal_(0.0)

    def row_logits(self, rows):
        return -rows


class Boolean(Algebra):
    name = "boolean"

    def from_prob(self, p):
        return (p > 0.5).to(p.dtype)

    def times(self, a, b):
        return a * b

    def plus(self, t, dim):
        return t.amax(dim)


class Godel(Algebra):
    name = "godel"

    def times(self, a, b):
        return torch.minimum(a, b)

    def plus(self, t, dim):
        return t.amax(dim)


class Lukasiewicz(Algebra):
    name = "lukasiewicz"

    def times(self, a, b):
        return (a + b - 1).clamp_min(0)

    def plus(self, t, dim):
        return t.amax(dim)


class Real(Markov):
    """The ordinary sum-product over unbounded reals: a latent relation's entries are
    its raw weights (no squashing), so latent weight matrices compose as a plain
    matrix product (PPCA's ``Z >> W``, the layers of a linear network)."""

    name = "real"

    def from_logits(self, logits):
        return logits

    def row_logits(self, rows):
        raise QvrBuildError(
            "a relation under the real algebra has signed, unnormalised entries; it is "
            "a matrix (relation()), not a distribution to draw a successor from"
        )


_ALL: dict[str, type[Algebra]] = {
    c.name: c
    for c in (Markov, ProductFuzzy, LogProb, MaxPlus, Tropical, Boolean, Godel, Lukasiewicz, Real)
}
assert set(_ALL) == set(ALGEBRAS), "runtime algebras out of sync with the vocabulary"


def get_algebra(name: str) -> Algebra:
    try:
        return _ALL[name]()
    except KeyError:
        raise QvrBuildError(f"unknown algebra '{name}'; expected one of {sorted(_ALL)}") from None
